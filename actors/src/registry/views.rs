//! The views as the registry's state keeps them: each behind an `Arc`, shared with the sorted
//! list readers hold and copied (`Arc::make_mut`) only when it changes while a reader still
//! holds it — a list of 100,000 is handed out as pointers, not as 100,000 copies
//! (docs/design.md, *Reading the fleet*).

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{GatewayId, GatewayView};

pub(super) type Views = HashMap<GatewayId, Arc<GatewayView>>;

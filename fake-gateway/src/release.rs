//! The real releases the fake can imitate: what differs from 2026.9.6 in their handshake (the
//! device-signature check, the protocol, `server.version`) and on their HTTP side. Each mode
//! answers with frames captured from that release (`testdata/openclaw-captures/<release>/`).

use crate::{FakeConfig, Signatures};

/// What the fake's HTTP side answers, as a real release does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpEndpoints {
    /// 2026.5 and later: `/health` and `/readyz` answer JSON.
    #[default]
    Health,
    /// 2026.1.x – 2026.2.x: no health endpoints; every path answers the Control UI page (200,
    /// `text/html`).
    ControlUiPage,
    /// 2026.3.31: every path answers 500 `text/plain` "Internal Server Error" (a packaging bug:
    /// a dependency not resolvable from a hoisted chunk) while the WebSocket works.
    Broken,
}

/// Real releases the fake can imitate (what differs from 2026.9.6: the signature check, the
/// protocol, the HTTP endpoints, and `server.version`, which npm builds before 2026.2.26 report
/// as `"dev"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// openclaw 2026.1.30: protocol 3, v2 signatures only, refusal without `details`.
    R2026_1_30,
    /// openclaw 2026.2.25: protocol 3, v2 signatures only, `DEVICE_AUTH_INVALID`.
    R2026_2_25,
    /// openclaw 2026.3.31: protocol 3, v3 or v2, every HTTP path 500.
    R2026_3_31,
    /// openclaw 2026.9.6: protocol 4, v3 or v2 (the default configuration).
    R2026_9_6,
}

impl FakeConfig {
    /// The default configuration, imitating `release`'s handshake.
    pub fn imitating(release: Release) -> Self {
        use HttpEndpoints::{Broken, ControlUiPage, Health};
        let (version, protocol, signatures, http) = match release {
            Release::R2026_1_30 => ("dev", 3, Signatures::V2Only2026_1, ControlUiPage),
            Release::R2026_2_25 => ("dev", 3, Signatures::V2Only2026_2, ControlUiPage),
            Release::R2026_3_31 => ("2026.3.31", 3, Signatures::V3OrV2, Broken),
            Release::R2026_9_6 => ("2026.9.6", 4, Signatures::V3OrV2, Health),
        };
        FakeConfig {
            version: version.into(),
            protocol,
            signatures,
            http,
            ..FakeConfig::default()
        }
    }
}

//! The state directory, the master key and the store: what the daemon opens first, and what
//! the commands that read its data (`migrate`, `backup`, `keys`) open the same way.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::info;

use super::{ADMIN_KEY_FILE, DaemonError};
use crate::auth::Role;
use crate::config::Config;
use crate::db::{self, Backend, DbError, Store};
use crate::secrets::{self, Cipher, SecretsError};
use gateway_supervisor_actors::model::Caller;

/// Creates the state directory (0700) if missing.
pub fn ensure_state_dir(dir: &Path) -> Result<(), DaemonError> {
    let err = |e: std::io::Error| DaemonError::StateDir {
        path: dir.to_owned(),
        reason: e.to_string(),
    };
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(err)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

/// The master key as the configuration and the service manager give it: the systemd credential
/// (`$CREDENTIALS_DIRECTORY`), then `secrets.master_key`, then `<state>/master.key` — generated
/// only for a `new_database`. One rule for the daemon and for the commands that read its data.
pub fn master_key(
    cfg: &Config,
    new_database: bool,
) -> Result<(secrets::MasterKey, secrets::KeySource), SecretsError> {
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    secrets::load_master_key(
        credentials.as_deref(),
        cfg.secrets.master_key.as_deref(),
        &cfg.state.dir,
        new_database,
    )
}

/// Opens and migrates the database and unlocks the secrets: everything a command needs.
pub fn open_store(cfg: &Config) -> Result<(Store, Backend, usize), DaemonError> {
    let (store, backend, migrated, _setup) = open_store_for_setup(cfg)?;
    Ok((store, backend, migrated))
}

/// [`open_store`], still holding the shared database's [`db::SetupLock`]: the daemon creates
/// what a new database needs (the first admin key, the device identity) before it lets go.
pub(super) fn open_store_for_setup(
    cfg: &Config,
) -> Result<(Store, Backend, usize, db::SetupLock), DaemonError> {
    ensure_state_dir(&cfg.state.dir)?;
    let (pool, backend) = db::open(&cfg.database.url, cfg.database.pool_size)?;
    let setup = db::SetupLock::take(&backend)?;
    let migrated = db::migrate(&pool)?;
    let new_database = !db::secrets::has_master_key_check(&pool)?;
    let (key, source) = master_key(cfg, new_database)?;
    info!(source = %source, "master key loaded");
    let store = Store {
        pool,
        cipher: Arc::new(Cipher::new(&key)),
    };
    store.verify_master_key().map_err(|e| match e {
        DbError::Secrets(SecretsError::Decrypt) => DaemonError::Startup(format!(
            "the master key from {source} is not the key this database was encrypted with; \
             restore the original key (never generate a new one for an existing database)"
        )),
        other => other.into(),
    })?;
    let bound = store.bind_legacy_tokens()?;
    if bound > 0 {
        info!(
            tokens = bound,
            "gateway tokens sealed to their gateways' addresses"
        );
    }
    Ok((store, backend, migrated, setup))
}

/// On the very first start (no API key at all), creates an admin key and writes it to
/// `<state>/admin.key` (0600). Returns the file's path when it did.
pub(super) fn first_start_admin_key(
    store: &Store,
    state_dir: &Path,
) -> Result<Option<PathBuf>, DaemonError> {
    if store.count_api_keys()? > 0 {
        return Ok(None);
    }
    let path = state_dir.join(ADMIN_KEY_FILE);
    if path.exists() {
        // Left over from another database; the new key replaces it.
        fs::remove_file(&path).map_err(|e| DaemonError::StateDir {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    }
    let (_row, key) = store.create_api_key(
        "initial-admin",
        Role::Admin,
        &crate::tenancy::KeyScope::default(),
        None,
        &Caller::system("first-start"),
    )?;
    secrets::write_private_file(&path, format!("{}\n", key.reveal()).as_bytes())?;
    Ok(Some(path))
}

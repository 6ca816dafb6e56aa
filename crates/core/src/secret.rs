//! The hub token, kept out of the settings file: in the OS keyring (the Secret Service on Linux: GNOME Keyring,
//! KWallet) when one answers, else in a file only this user can read (`settings.token`, 0600, beside the settings
//! in their 0700 folder). A keyring that does not answer within a few seconds (none running, a locked one waiting
//! on a prompt nobody sees) counts as none. `MM_KEYRING=0` skips the keyring altogether.
//!
//! Which store holds the token is recorded by the file's existence: a token set or cleared while the keyring did
//! not answer (over ssh, say) is written to the file (an empty file for "cleared"), which then wins over whatever
//! the keyring still holds, and that stale entry is deleted once the keyring answers. A token set while the keyring
//! answers goes there and the file goes. So a revoked token never comes back.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The keyring entry's service name.
const SERVICE: &str = crate::paths::APP_ID;
/// How long the keyring may take to answer before the file is used instead.
const KEYRING_WAIT: Duration = Duration::from_secs(3);

/// Set once the keyring failed to answer: this process uses the file from then on.
static KEYRING_SILENT: AtomicBool = AtomicBool::new(false);

/// Where a token was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHome {
    Keyring,
    File,
}

/// The token of one settings file.
#[derive(Debug, Clone)]
pub struct TokenStore {
    file: PathBuf,
    /// The keyring entry's user name: the settings file's path, so each settings file has its own token.
    account: String,
}

impl TokenStore {
    /// The token that goes with the settings file at `settings`.
    pub fn beside(settings: &Path) -> TokenStore {
        TokenStore { file: settings.with_extension("token"), account: format!("hub-token@{}", settings.display()) }
    }

    /// The proxy's user and password (`USER:PASSWORD`) the settings file at `settings` goes with.
    pub fn for_proxy(settings: &Path) -> TokenStore {
        TokenStore {
            file: settings.with_file_name("proxy.credentials"),
            account: format!("proxy-credentials@{}", settings.display()),
        }
    }

    /// The token of another machine (`url`) the settings file at `settings` names.
    pub fn for_machine(settings: &Path, url: &str) -> TokenStore {
        // FNV-1a: one file name per address, the same in every build.
        let hash = url.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3));
        TokenStore {
            file: settings.with_file_name(format!("machine-{hash:016x}.token")),
            account: format!("machine-token:{url}@{}", settings.display()),
        }
    }

    fn keyring_allowed() -> bool {
        !std::env::var("MM_KEYRING").is_ok_and(|v| matches!(v.trim(), "0" | "off" | "false" | "no"))
    }

    /// Runs `op` on the keyring entry on a thread of its own, giving up after [`KEYRING_WAIT`]; `None` when no
    /// keyring answered (or it is turned off).
    fn keyring<T: Send + 'static>(
        &self,
        op: impl FnOnce(&keyring::Entry) -> keyring::Result<T> + Send + 'static,
    ) -> Option<keyring::Result<T>> {
        if !TokenStore::keyring_allowed() || KEYRING_SILENT.load(Ordering::Relaxed) {
            return None;
        }
        let account = self.account.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(keyring::Entry::new(SERVICE, &account).and_then(|entry| op(&entry)));
        });
        match rx.recv_timeout(KEYRING_WAIT) {
            Ok(Err(keyring::Error::PlatformFailure(_) | keyring::Error::NoStorageAccess(_))) | Err(_) => {
                // Not asked again by this process: every settings read would wait on it.
                KEYRING_SILENT.store(true, Ordering::Relaxed);
                None
            }
            Ok(answer) => Some(answer),
        }
    }

    /// The token, from the file when there is one (it was set or cleared while the keyring did not answer, and is
    /// the newer word; the keyring's entry is stale and deleted once it answers), else from the keyring; `None`
    /// when none is kept.
    pub fn get(&self) -> io::Result<Option<String>> {
        match std::fs::read_to_string(&self.file) {
            Ok(text) => {
                if let Some(Err(e)) = self.keyring(forget) {
                    tracing::warn!(error = %e, "the keyring kept a token that was since replaced; it could not be deleted");
                }
                return Ok(Some(text.trim().to_string()).filter(|t| !t.is_empty()));
            }
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            Err(_) => {}
        }
        // Any other answer of the keyring (an ambiguous or unreadable entry) counts as none: the settings must stay
        // readable, and a new token set then replaces it.
        Ok(self.keyring(|e| e.get_password()).and_then(Result::ok))
    }

    /// Keeps `token` (or forgets it, with `None`): in the keyring when one answers (and then nowhere else), else in
    /// the private file, which then wins over the keyring's stale entry (an empty file: forgotten). Says where it
    /// went.
    pub fn set(&self, token: Option<&str>) -> io::Result<Option<TokenHome>> {
        let Some(token) = token else {
            return match self.keyring(forget) {
                Some(Ok(())) => remove(&self.file).map(|()| None),
                // No keyring is used here at all (`MM_KEYRING=0`): the file was the only store.
                None if !TokenStore::keyring_allowed() => remove(&self.file).map(|()| None),
                // The keyring did not answer and may still hold it: the empty file says it is gone.
                _ => crate::disk::write_atomic(&self.file, b"", 0o600).map(|()| None),
            };
        };
        let owned = token.to_string();
        if let Some(Ok(())) = self.keyring(move |e| e.set_password(&owned)) {
            remove(&self.file)?;
            return Ok(Some(TokenHome::Keyring));
        }
        crate::disk::write_atomic(&self.file, token.as_bytes(), 0o600)?;
        Ok(Some(TokenHome::File))
    }
}

/// Deletes the keyring's entry; none there is as good.
fn forget(entry: &keyring::Entry) -> keyring::Result<()> {
    match entry.delete_credential() {
        Err(keyring::Error::NoEntry) => Ok(()),
        other => other,
    }
}

fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

//! The app's own folders, known without Tauri so that the CLI and the app agree on them.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The app identifier, as in `tauri.conf.json` (a test in the shell keeps the two equal).
pub const APP_ID: &str = "dev.model-manager.app";

/// Where the app keeps its data: `$XDG_DATA_HOME/{APP_ID}`, else `~/.local/share/{APP_ID}` (the folder Tauri's
/// `app_data_dir` gives on Linux).
pub fn app_data_dir() -> PathBuf {
    app_data_dir_with(std::env::var_os("XDG_DATA_HOME").map(PathBuf::from), std::env::var_os("HOME").map(PathBuf::from))
}

pub fn app_data_dir_with(xdg_data_home: Option<PathBuf>, home: Option<PathBuf>) -> PathBuf {
    let base = xdg_data_home
        .filter(|p| p.is_absolute())
        .or_else(|| home.map(|h| h.join(".local/share")))
        .unwrap_or_else(|| PathBuf::from(".local/share"));
    base.join(APP_ID)
}

/// Where `mm serve` keeps the token it made (0600), in the data folder `data_dir`: the app and `mm --remote` of
/// the same user read it to reach a server on this machine that asks for it on loopback too.
pub fn serve_token_file(data_dir: &Path) -> PathBuf {
    data_dir.join("serve-token")
}

/// Where `mm serve` says which address it listens on, in the data folder `data_dir`: the port its kept token is for.
pub fn serve_address_file(data_dir: &Path) -> PathBuf {
    data_dir.join("serve-address")
}

/// The file that keeps the app's unfinished downloads across restarts.
pub fn download_journal() -> PathBuf {
    download_journals(&app_data_dir())[0].clone()
}

/// The journals of unfinished downloads in the data folder `data_dir`: the app's and `mm serve`'s (each keeps its
/// own queue).
pub fn download_journals(data_dir: &Path) -> [PathBuf; 2] {
    [data_dir.join("downloads.json"), data_dir.join("serve-downloads.json")]
}

/// A path a client asked this machine to read (to import, or to assess), as the real path it names: absolute,
/// existing, a regular file or a folder, and not in the kernel's or devices' pseudo file systems. Anything else is
/// refused with what is wrong.
pub fn checked_input_path(path: &str) -> Result<PathBuf, crate::ErrorPayload> {
    let refused = |why: &str| crate::ErrorPayload::new(crate::ErrorCode::InvalidInput, format!("{path}: {why}"));
    if path.contains('\0') || !Path::new(path).is_absolute() {
        return Err(refused("not an absolute path (give the full path, from /)"));
    }
    let real = fs::canonicalize(path)
        .map_err(|e| crate::ErrorPayload::new(crate::ErrorCode::of_io(&e), format!("{path}: {e}")))?;
    if ["/proc", "/sys", "/dev", "/run"].iter().any(|p| real.starts_with(p)) {
        return Err(refused("a system folder, not a model"));
    }
    let kind = fs::metadata(&real).map_err(|e| refused(&e.to_string()))?.file_type();
    if !kind.is_file() && !kind.is_dir() {
        return Err(refused("neither a file nor a folder"));
    }
    Ok(real)
}

/// Makes `dir` (and any missing parent) a folder only this user can enter (0700), tightening one that exists:
/// the app's folders hold the settings, the journal of downloads (whose URLs may be signed) and maybe the token.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    restrict(dir, 0o700)
}

/// Takes the group's and others' permissions off `path` (to `mode`), if it exists and has any.
pub fn restrict(path: &Path, mode: u32) -> io::Result<()> {
    match fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => fs::set_permissions(path, fs::Permissions::from_mode(mode)),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_folders_and_files_lose_the_group_and_other_bits() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/app");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        let file = dir.join("settings.json");
        fs::write(&file, b"{}").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        restrict(&file, 0o600).unwrap();
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        restrict(&dir.join("missing"), 0o600).unwrap();
    }

    #[test]
    fn follows_xdg_then_home() {
        let home = Some(PathBuf::from("/home/ada"));
        assert_eq!(app_data_dir_with(None, home.clone()), PathBuf::from("/home/ada/.local/share").join(APP_ID));
        assert_eq!(app_data_dir_with(Some("/xdg".into()), home.clone()), PathBuf::from("/xdg").join(APP_ID));
        assert_eq!(
            app_data_dir_with(Some("relative".into()), home),
            PathBuf::from("/home/ada/.local/share").join(APP_ID)
        );
    }
}

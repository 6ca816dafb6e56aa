//! Where `mm config set token` keeps the token: in a real Secret Service (gnome-keyring on a private D-Bus session
//! bus this test starts, unlocked with a password on stdin as on a headless desktop) when one answers, else in a
//! file only the user can read; never in `settings.json`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

mod common;

/// A private session bus with an unlocked gnome-keyring on it; both stop when dropped.
struct SecretService {
    bus: Child,
    keyring: Child,
    address: String,
}

impl SecretService {
    fn start(home: &Path) -> SecretService {
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon runs (scripts/setup installs dbus)");
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap()).read_line(&mut address).unwrap();
        let address = address.trim().to_string();
        let runtime = home.join("run");
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", home)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("XDG_DATA_HOME", home.join("share"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon runs (scripts/setup installs gnome-keyring)");
        keyring.stdin.take().unwrap().write_all(b"a test password").unwrap();
        let service = SecretService { bus, keyring, address };
        // Ready once the Secret Service's name is on the bus. Only asked whether it is there: a lookup before the
        // daemon took the name would have the bus start another, locked, keyring in its place.
        for _ in 0..200 {
            if service.has_name() {
                return service;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("gnome-keyring did not take the Secret Service name");
    }

    fn has_name(&self) -> bool {
        let out = Command::new("dbus-send")
            .args(["--session", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus"])
            .arg("org.freedesktop.DBus.NameHasOwner")
            .arg("string:org.freedesktop.secrets")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("boolean true")
    }

    /// The secret stored for `account` under the app's service name, as `secret-tool` finds it.
    fn lookup(&self, account: &str) -> Option<String> {
        let out = Command::new("secret-tool")
            .args(["lookup", "service", "dev.model-manager.app", "username", account])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned()).filter(|s| out.status.success() && !s.is_empty())
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        for child in [&mut self.keyring, &mut self.bus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn mm(home: &Path, bus: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = common::mm(&home.join("cache"), home);
    cmd.env_remove("MM_KEYRING").args(args);
    match bus {
        Some(address) => cmd.env("DBUS_SESSION_BUS_ADDRESS", address),
        // No session bus at all: no keyring can answer.
        None => cmd.env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus"),
    };
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "mm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn the_token_lives_in_the_keyring_when_one_answers_and_in_a_private_file_otherwise() {
    let home = tempfile::tempdir().unwrap();
    let settings = home.path().join(".mm-data/dev.model-manager.app/settings.json");
    let token_file = settings.with_extension("token");
    let service = SecretService::start(home.path());

    mm(home.path(), Some(&service.address), &["config", "set", "token", "hf_KEYRINGkeyring1234"]);
    let account = format!("hub-token@{}", settings.display());
    assert_eq!(service.lookup(&account).as_deref(), Some("hf_KEYRINGkeyring1234"), "in the Secret Service");
    assert!(!token_file.exists(), "and nowhere else");
    assert!(!std::fs::read_to_string(&settings).unwrap().contains("KEYRING"));
    let shown = mm(home.path(), Some(&service.address), &["config", "get", "token"]);
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), "hf_…1234", "read back from the keyring");
    mm(home.path(), Some(&service.address), &["config", "set", "token", ""]);
    assert_eq!(service.lookup(&account), None, "cleared from the keyring");

    // No keyring: a file only this user can read, in a folder only this user can enter.
    mm(home.path(), None, &["config", "set", "token", "hf_FILEfilefile5678"]);
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), "hf_FILEfilefile5678");
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(settings.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    assert!(!std::fs::read_to_string(&settings).unwrap().contains("FILEfile"));
    let shown = mm(home.path(), None, &["config", "get", "token"]);
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), "hf_…5678");
}

#[test]
fn a_token_an_older_version_kept_in_the_settings_file_moves_out_of_it() {
    let home = tempfile::tempdir().unwrap();
    let settings = home.path().join(".mm-data/dev.model-manager.app/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(&settings, r#"{"token": "hf_OLDVERSIONold9999", "maxConcurrentDownloads": 2}"#).unwrap();
    std::fs::set_permissions(&settings, std::fs::Permissions::from_mode(0o644)).unwrap();
    let shown = mm(home.path(), None, &["config", "get", "token"]);
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), "hf_…9999");
    let text = std::fs::read_to_string(&settings).unwrap();
    assert!(!text.contains("OLDVERSION") && text.contains("\"maxConcurrentDownloads\": 2"), "{text}");
    assert_eq!(std::fs::metadata(&settings).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(settings.with_extension("token")).unwrap(), "hf_OLDVERSIONold9999");
}

#[test]
fn a_token_replaced_or_cleared_while_the_keyring_is_silent_never_comes_back_from_it() {
    let home = tempfile::tempdir().unwrap();
    let settings = home.path().join(".mm-data/dev.model-manager.app/settings.json");
    let account = format!("hub-token@{}", settings.display());
    let service = SecretService::start(home.path());
    let shown = |bus: Option<&str>| {
        String::from_utf8_lossy(&mm(home.path(), bus, &["config", "get", "token"]).stdout).trim().to_string()
    };

    mm(home.path(), Some(&service.address), &["config", "set", "token", "hf_OLDrevoked1111"]);
    // Over ssh: no keyring answers, and the token is replaced.
    mm(home.path(), None, &["config", "set", "token", "hf_NEWreplaced2222"]);
    assert_eq!(service.lookup(&account).as_deref(), Some("hf_OLDrevoked1111"), "the keyring could not be told");
    // Back at the desktop: the newer token, and the revoked one is gone from the keyring.
    assert_eq!(shown(Some(&service.address)), "hf_…2222");
    assert_eq!(service.lookup(&account), None, "the stale entry was cleaned");

    // The same for a token cleared while the keyring is silent.
    mm(home.path(), Some(&service.address), &["config", "set", "token", "hf_KEPTkeyring3333"]);
    assert!(!settings.with_extension("token").exists(), "in the keyring only");
    mm(home.path(), None, &["config", "set", "token", ""]);
    assert_eq!(shown(Some(&service.address)), "", "cleared stays cleared");
    assert_eq!(service.lookup(&account), None);
    assert_eq!(shown(None), "");
}

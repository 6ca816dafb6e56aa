//! The machines the user added (other machines' `mm serve`), their tokens kept like the hub token.

use super::*;

impl Manager {
    /// Adds (or updates) another machine's `mm serve`, after checking that it answers with this token; the token
    /// is kept like the hub token (the keyring, else a 0600 file), never in the settings file.
    pub async fn add_machine(&self, name: &str, url: &str, token: Option<&str>) -> Result<MachineEntry, ErrorPayload> {
        let remote = Remote::new(url, token.map(str::to_string))?;
        remote.health().await?;
        let host = remote.url().split("://").nth(1).unwrap_or(remote.url()).to_string();
        let entry = MachineEntry {
            name: Some(name.trim()).filter(|n| !n.is_empty()).map(str::to_string).unwrap_or(host),
            url: remote.url().to_string(),
        };
        let kept = entry.clone();
        self.inner
            .store
            .update(move |s| {
                s.machines.retain(|m| m.url != kept.url);
                s.machines.push(kept);
                Ok(())
            })
            .map_err(payload)?;
        self.machine_tokens(&entry.url).set(token.filter(|t| !t.trim().is_empty())).map_err(|e| {
            ErrorPayload::new(ErrorCode::of_io(&e), format!("cannot keep the token of {}: {e}", entry.url))
        })?;
        self.changed(Vec::new());
        Ok(entry)
    }

    /// Forgets another machine and its token.
    pub fn remove_machine(&self, url: &str) -> Result<(), ErrorPayload> {
        let url = url.to_string();
        let (_, found) = self
            .inner
            .store
            .update(|s| {
                let before = s.machines.len();
                s.machines.retain(|m| m.url != url);
                Ok(s.machines.len() != before)
            })
            .map_err(payload)?;
        if !found {
            return Err(ErrorPayload::new(ErrorCode::NotFound, format!("no machine {url} was added")));
        }
        let _ = self.machine_tokens(&url).set(None);
        self.changed(Vec::new());
        Ok(())
    }

    /// Another machine the user added, with its kept token.
    pub fn remote(&self, url: &str) -> Result<Remote, ErrorPayload> {
        let known = self.settings().machines.into_iter().any(|m| m.url == url);
        if !known {
            return Err(ErrorPayload::new(
                ErrorCode::NotFound,
                format!("no machine {url} was added: add it in Settings → Machines first"),
            ));
        }
        self.machine(url)
    }

    /// The machine at `url`, with the token kept for it (by Settings → Machines, or `mm serve`'s own file for one
    /// on this machine's loopback), added or not: what `mm serve --peer` reaches.
    pub fn machine(&self, url: &str) -> Result<Remote, ErrorPayload> {
        let token = self.machine_tokens(url).get().ok().flatten();
        Remote::new(url, token)
    }

    fn machine_tokens(&self, url: &str) -> crate::secret::TokenStore {
        crate::secret::TokenStore::for_machine(self.inner.store.path(), url)
    }
}

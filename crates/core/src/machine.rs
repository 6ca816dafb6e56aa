//! The machine a face is driving: this one (its [`Manager`]) or another (a [`Remote`] `mm serve`). It offers the
//! operations of the table ([`crate::operations!`]) by handing each to the machine it is, so a face switches
//! machines without knowing which it talks to.

use crate::download::DownloadEvent;
use crate::operations::Operations;
use crate::remote::Remote;
use crate::Manager;
use tokio::sync::broadcast;

/// The machines a face can drive, and which one it drives now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct MachineList {
    /// The address of the machine driven now; none for this machine.
    pub current: Option<String>,
    pub machines: Vec<crate::settings::MachineEntry>,
    /// What this machine's endpoint calls the driven machine's models: `NAME/` before their ids (see
    /// [`endpoint_prefix`]); none for this machine.
    pub endpoint_prefix: Option<String>,
}

impl MachineList {
    /// The list, with `current` the address driven now.
    pub fn new(current: Option<String>, machines: Vec<crate::settings::MachineEntry>) -> MachineList {
        let endpoint_prefix = current
            .as_ref()
            .and_then(|url| machines.iter().find(|m| &m.url == url))
            .map(|m| endpoint_prefix(&m.name))
            .filter(|p| !p.is_empty());
        MachineList { current, machines, endpoint_prefix }
    }
}

/// The prefixes of this machine's own model names (`local/…`, `ollama/…`, `hf.co/…`): no machine lends under them.
pub const THIS_MACHINES_PREFIXES: [&str; 4] = ["local", "ollama", "hf.co", "huggingface.co"];

/// The NAME another machine's models go by on this machine's model endpoint (`NAME/ID`): the name the user gave it,
/// made safe for a model name (letters, digits, `.`, `_`, `-`; anything else `-`). Empty for a name with nothing
/// safe in it, and such a machine lends no models.
pub fn endpoint_prefix(name: &str) -> String {
    let name: String =
        name.trim().chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' }).collect();
    name.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names_are_made_safe_for_model_names() {
        assert_eq!(endpoint_prefix("gpu-server"), "gpu-server");
        assert_eq!(endpoint_prefix(" GPU box #2 "), "GPU-box--2");
        assert_eq!(endpoint_prefix("192.168.1.5:8765"), "192.168.1.5-8765");
        assert_eq!(endpoint_prefix("//"), "");
        let entry = |name: &str, url: &str| crate::settings::MachineEntry { name: name.into(), url: url.into() };
        let list =
            MachineList::new(Some("http://b:1".into()), vec![entry("a", "http://a:1"), entry("big box", "http://b:1")]);
        assert_eq!(list.endpoint_prefix.as_deref(), Some("big-box"));
        assert_eq!(MachineList::new(None, list.machines).endpoint_prefix, None);
    }
}

#[derive(Clone)]
pub enum Machine {
    Local(Manager),
    Remote(Remote),
}

impl Machine {
    /// Where it is: `this machine`, or the remote's address.
    pub fn name(&self) -> String {
        match self {
            Machine::Local(_) => "this machine".into(),
            Machine::Remote(r) => r.url().to_string(),
        }
    }

    /// Where its models are: this machine's cache folder, or the other machine's address.
    pub fn place(&self) -> String {
        match self {
            Machine::Local(m) => m.cache_dir().display().to_string(),
            Machine::Remote(r) => r.url().to_string(),
        }
    }

    /// Whether it is this machine: a path a face was given names a file here only then.
    pub fn is_this_machine(&self) -> bool {
        matches!(self, Machine::Local(_))
    }

    /// The machine's download progress and model lifecycle events.
    pub fn subscribe(&self) -> broadcast::Receiver<DownloadEvent> {
        match self {
            Machine::Local(m) => m.subscribe(),
            Machine::Remote(r) => r.subscribe(),
        }
    }
}

/// Each operation, on the machine this is.
macro_rules! dispatch {
    ([] $(
        $(#[$meta:meta])*
        $name:ident $method:ident $path:literal $tag:literal
        path[$( $(#[$pmeta:meta])* $p:ident: $pt:ty ),*]
        query[$($q:ident: $qt:ty)?]
        body[$($b:ident: $bt:ty)?]
        progress[$($prt:ty, $event:literal)?]
        answer[$answer:ty] ok[$($ok:literal),+] errors[$($err:literal),*];
    )*) => {
        impl Operations for Machine {
            $(
                async fn $name(
                    &self,
                    $($p: $pt,)*
                    $($q: $qt,)?
                    $($b: $bt,)?
                    $(on_progress: impl FnMut($prt) + Send + 'static,)?
                ) -> Result<$answer, crate::ErrorPayload> {
                    match self {
                        Machine::Local(m) => Operations::$name(m, $($p,)* $($q,)? $($b,)? $({ let _: Option<$prt> = None; on_progress },)?).await,
                        Machine::Remote(r) => Operations::$name(r, $($p,)* $($q,)? $($b,)? $({ let _: Option<$prt> = None; on_progress },)?).await,
                    }
                }
            )*
        }
    };
}

crate::operations!(dispatch);

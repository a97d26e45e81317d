//! The identifiers every console module shares — which view ([`ViewId`]),
//! how loud a footer message is ([`Level`]), where to point a view
//! ([`Nav`]). A leaf module: it imports no other console module, so the
//! action table, requests, overlays and views all depend on it and never on
//! each other in a circle.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViewId {
    Dashboard,
    Schools,
    Users,
    Limbo,
    Queues,
    Trash,
    Jobs,
    Log,
    Verify,
    SyncSchools,
}

impl ViewId {
    /// Tab and number-key order (1…9, then 0).
    pub const ALL: [ViewId; 10] = [
        ViewId::Dashboard,
        ViewId::Schools,
        ViewId::Users,
        ViewId::Limbo,
        ViewId::Queues,
        ViewId::Trash,
        ViewId::Jobs,
        ViewId::Log,
        ViewId::Verify,
        ViewId::SyncSchools,
    ];

    /// The `:` command that jumps here (also the screenshot name).
    pub fn name(self) -> &'static str {
        match self {
            ViewId::Dashboard => "dashboard",
            ViewId::Schools => "schools",
            ViewId::Users => "users",
            ViewId::Limbo => "limbo",
            ViewId::Queues => "queues",
            ViewId::Trash => "trash",
            ViewId::Jobs => "jobs",
            ViewId::Log => "log",
            ViewId::Verify => "verify",
            ViewId::SyncSchools => "sync-schools",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ViewId::Dashboard => "Dashboard",
            ViewId::Schools => "Schools",
            ViewId::Users => "Users",
            ViewId::Limbo => "Limbo",
            ViewId::Queues => "Queues",
            ViewId::Trash => "Trash",
            ViewId::Jobs => "Jobs & runs",
            ViewId::Log => "Log",
            ViewId::Verify => "Verify",
            ViewId::SyncSchools => "Sync schools",
        }
    }

    /// A short title for a narrow tab bar.
    pub fn short(self) -> &'static str {
        match self {
            ViewId::Dashboard => "Dash",
            ViewId::Jobs => "Jobs",
            ViewId::SyncSchools => "Assign",
            other => other.title(),
        }
    }

    /// Other words the palette accepts for this view.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            ViewId::Dashboard => &["home", "overview"],
            ViewId::Jobs => &["runs", "import"],
            ViewId::Log => &["logs"],
            ViewId::SyncSchools => &["assign", "sync schools"],
            ViewId::Queues => &["sync", "authorities"],
            _ => &[],
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The number key that jumps here (`1`…`9`, then `0`).
    pub fn key(self) -> char {
        char::from(b'0' + ((self.index() + 1) % 10) as u8)
    }
}

/// A message for the footer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Ok,
    Warn,
    Error,
}

/// Where to point a view when jumping to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Nav {
    /// Users of one school.
    School(String),
}

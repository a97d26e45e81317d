//! The command line: every subcommand, flag and its help text.

use crate::engine::feed::Format;
use crate::model::Role;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "rollcall",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("BUILD_COMMIT"), ")"),
    about = "Keeps school identities in sync: per-school imports, limbo, sync queues.",
    after_help = "Exit codes: 0 ok, 1 error, 2 usage or invalid argument, 3 refused (mass-removal guard, \
                  row-error limit, read-only), 4 incomplete (work left for later)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// Without a subcommand: the console (when stdout is a terminal).
    #[command(flatten)]
    pub console: ConsoleArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How the console looks and behaves.
#[derive(Debug, Args, Clone, Default)]
pub struct ConsoleArgs {
    /// Console theme: default, light, high-contrast, mono, or NAME.toml in
    /// the theme dir (overrides console.theme and NO_COLOR).
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,
    /// Capture the mouse in the console (wheel scrolls).
    #[arg(long)]
    pub mouse: bool,
}

#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Config overlay, read after the system and user config (repeatable).
    #[arg(long = "config", value_name = "FILE", global = true)]
    pub config: Vec<PathBuf>,
    /// Data dir (directory.sqlite, queues/, runs/, logs/).
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Override one config key, e.g. --set import.max_row_errors=-1 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    pub set: Vec<String>,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Refuse every action that changes data.
    #[arg(long, global = true)]
    pub read_only: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the config files and paths in use and the merged config.
    Info,
    /// Build a deterministic demo district in the data dir.
    Demo(DemoArgs),
    /// List or create schools.
    #[command(subcommand)]
    Schools(SchoolsCmd),
    /// Import one school's feed (plan first, write after).
    Import(ImportArgs),
    /// List and show users.
    #[command(subcommand)]
    Users(UsersCmd),
    /// Users who left their last school: list, restore, extend, purge.
    #[command(subcommand)]
    Limbo(LimboCmd),
    /// Import and purge run records.
    #[command(subcommand)]
    Runs(RunsCmd),
    /// Open the console (the same as no subcommand on a terminal).
    Tui(ConsoleArgs),
    /// Remote authorities: list, show.
    #[command(subcommand)]
    Authorities(AuthoritiesCmd),
    /// Send queued changes to the authorities.
    #[command(subcommand)]
    Sync(SyncCmd),
    /// Sync forever; purge limbo and old trash daily. SIGTERM/SIGINT stop
    /// it (a second one at once), SIGHUP reloads the configuration.
    Daemon(DaemonArgs),
    /// Write every metric in the Prometheus text format (to stdout, or
    /// atomically to a file for node_exporter's textfile collector).
    Metrics {
        #[arg(long, value_name = "PATH")]
        textfile: Option<PathBuf>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout.
    Man,
    /// Follow the LDAP directory's change stream (RFC 4533) into the journal
    /// until stopped (the daemon does it too).
    Listen,
    /// Out-queues: depth, oldest item, paused or not.
    #[command(subcommand)]
    Queue(QueueCmd),
    /// Queue a user, group or school afresh.
    #[command(subcommand)]
    Schedule(ScheduleCmd),
    /// Queue everything an authority should hold afresh.
    Resync {
        #[arg(long, value_name = "NAME")]
        authority: Option<String>,
    },
    /// Items the sender gave up on: list, show, delete, requeue, purge.
    #[command(subcommand)]
    Trash(TrashCmd),
    /// Which schools each authority receives: list, add, remove.
    #[command(subcommand)]
    SyncSchools(SyncSchoolsCmd),
    /// Compare what an authority holds with what it should hold (exit 0
    /// clean, 1 differences); --fix queues the repairs.
    Verify(VerifyArgs),
    /// Convert directory data written by older versions (LDAP: per-role
    /// contributions); the embedded store converts itself when opened.
    Migrate {
        /// Count what would be converted, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Serve /metrics (Prometheus) and /healthz on this address, e.g.
    /// 127.0.0.1:9465.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum SyncSchoolsCmd {
    /// Each authority's schools and where each assignment comes from.
    List {
        #[arg(long, value_name = "NAME")]
        authority: Option<String>,
    },
    /// Assign schools to an authority (and queue all their objects).
    Add {
        #[arg(long, value_name = "NAME")]
        authority: String,
        #[arg(required_unless_present = "all_schools", conflicts_with = "all_schools")]
        schools: Vec<String>,
        /// Every school of the directory.
        #[arg(long)]
        all_schools: bool,
        /// Queue every user, class and workgroup of the schools (false: only
        /// record the assignment).
        #[arg(long, value_name = "true|false", default_value_t = crate::engine::sync::assign::SchoolsAdd::DEFAULT_INITIAL_SYNC, action = clap::ArgAction::Set)]
        initial_sync: bool,
        /// Assign (and schedule) a school that is already assigned.
        #[arg(long)]
        force: bool,
        /// Only say what would happen: objects queued, sent, failing to map.
        #[arg(long)]
        dry_run: bool,
    },
    /// Take schools from an authority (and delete their objects there).
    Remove {
        #[arg(long, value_name = "NAME")]
        authority: String,
        #[arg(required = true)]
        schools: Vec<String>,
        /// Delete the schools' groups on the target, and their users that
        /// have no other school synced to it (false: only drop the assignment).
        #[arg(long, value_name = "true|false", default_value_t = crate::engine::sync::assign::SchoolsRemove::DEFAULT_DELETE_ON_TARGET, action = clap::ArgAction::Set)]
        delete_on_target: bool,
        /// Remove (and delete on the target) a school that is not assigned.
        #[arg(long)]
        force: bool,
        /// Only say what would happen: objects deleted on the target.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum VerifyKindArg {
    Schools,
    Classes,
    Workgroups,
    Users,
    All,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// What to compare.
    #[arg(value_enum)]
    pub kind: VerifyKindArg,
    #[arg(long, value_name = "NAME")]
    pub authority: String,
    /// LDAP-style filter (RFC 4515) over school, role, username, firstname,
    /// lastname, email, birthday, record_uid, source_uid, class, workgroup,
    /// state, disabled, name, kind, external_id; e.g. "(&(school=gsmitte)(role=student))".
    #[arg(long, value_name = "FILTER")]
    pub filter: Option<String>,
    /// Queue every missing and different object and delete the unexpected.
    #[arg(long)]
    pub fix: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuthoritiesCmd {
    /// Every configured authority with its queue.
    List,
    /// One authority: settings, mapping, problems, queue.
    Show { name: String },
    /// Hold an authority: nothing is sent to it until `resume` (audited).
    Pause {
        name: String,
        /// Why, shown in `queue list` and the console.
        #[arg(long, default_value = "paused by an admin")]
        reason: String,
    },
    /// Send to a held or unreachable authority again (audited).
    Resume { name: String },
}

#[derive(Debug, Subcommand)]
pub enum SyncCmd {
    /// Distribute the journal and send the queues.
    Run {
        /// Only this authority.
        #[arg(long, value_name = "NAME")]
        authority: Option<String>,
        /// Drain the queues, then exit (0: drained, 4: items left, with why).
        #[arg(long)]
        once: bool,
        /// Parallel requests per authority (default: its `workers`).
        #[arg(long, value_name = "N")]
        workers: Option<usize>,
        /// With --once: give up on an authority whose next retry or probe is
        /// further away than this.
        #[arg(long, value_name = "SECS", default_value_t = 60.0)]
        max_wait: f64,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueueCmd {
    /// Depth, oldest item age and paused state per authority.
    List {
        #[arg(long, value_name = "NAME")]
        authority: Option<String>,
    },
    /// The waiting items of one authority.
    Show { authority: String },
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCmd {
    /// A user and its groups.
    User { username: String },
    /// A class or workgroup: SCHOOL-NAME or class:SCHOOL:NAME.
    Group { group: String },
    /// A school with all its users and groups.
    School {
        name: String,
        /// Threads writing the queue items.
        #[arg(long, value_name = "N", default_value_t = 4)]
        workers: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum TrashCmd {
    /// Trash items, oldest failure first.
    List {
        #[arg(long, value_name = "NAME")]
        authority: Option<String>,
    },
    /// One item: its failure, the payload sent and how it differs from now.
    Show { item: String },
    /// Delete items (AUTHORITY/FILE).
    Delete {
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Queue the items' objects afresh and remove them from trash.
    Requeue {
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Delete items older than DAYS (default: sync.trash_retention_days).
    Purge {
        #[arg(long, value_name = "DAYS")]
        older_than: Option<u32>,
        #[arg(long, value_name = "NAME")]
        authority: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[arg(long, default_value_t = 8)]
    pub schools: usize,
    #[arg(long, default_value_t = 250)]
    pub users_per_school: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print a summary instead of opening the console.
    #[arg(long)]
    pub no_tui: bool,
    #[command(flatten)]
    pub console: ConsoleArgs,
}

#[derive(Debug, Subcommand)]
pub enum SchoolsCmd {
    /// All schools with their number of users.
    List,
    /// Create a school (refused when it exists in any case: names are
    /// case-insensitive).
    Create {
        name: String,
        #[arg(long, value_name = "TEXT")]
        display_name: Option<String>,
    },
    /// Join two spellings of one school (names differing only in case):
    /// FROM's users, classes and workgroups move to INTO, FROM goes (audited).
    Merge { from: String, into: String },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The school this feed is for.
    #[arg(long)]
    pub school: String,
    /// Role(s) the feed lists completely; without it, the role column decides.
    #[arg(long = "role", value_parser = parse_role)]
    pub roles: Vec<Role>,
    /// Source database (default: import.source_uid).
    #[arg(long = "source", value_name = "UID")]
    pub source: Option<String>,
    /// Print the plan, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply even when the mass-removal guard objects.
    #[arg(long)]
    pub force: bool,
    /// Write new users' initial passwords to this CSV (mode 0600).
    #[arg(long, value_name = "FILE")]
    pub passwords_csv: Option<PathBuf>,
    /// Feed format (default: from the file extension; unknown extensions read as CSV).
    #[arg(long, value_parser = parse_format)]
    pub format: Option<Format>,
    /// Mapping-rules file (default: import.mappings.<format>).
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// The feed's character set when it is not UTF-8: an encoding label
    /// such as windows-1252 or iso-8859-15 (default: import.encoding).
    #[arg(long, value_name = "LABEL")]
    pub encoding: Option<String>,
    /// The feed file.
    pub file: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum StateFilter {
    Active,
    Limbo,
    All,
}

#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// Users, filtered.
    List {
        #[arg(long)]
        school: Option<String>,
        #[arg(long, value_enum, default_value_t = StateFilter::All)]
        state: StateFilter,
        #[arg(long, value_parser = parse_role)]
        role: Option<Role>,
    },
    /// One user, by username or by record uid.
    Show {
        #[arg(required_unless_present = "record_uid", conflicts_with = "record_uid")]
        username: Option<String>,
        #[arg(long, value_name = "UID")]
        record_uid: Option<String>,
        #[arg(long = "source", value_name = "UID", requires = "record_uid")]
        source: Option<String>,
    },
    /// What each run received for a user, newest first.
    History {
        #[arg(required_unless_present = "record_uid", conflicts_with = "record_uid")]
        username: Option<String>,
        #[arg(long, value_name = "UID")]
        record_uid: Option<String>,
        #[arg(long = "source", value_name = "UID", requires = "record_uid")]
        source: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum LimboCmd {
    /// Users in limbo, soonest purge first.
    List,
    /// Move a user from limbo into a school and activate it.
    Restore {
        username: String,
        #[arg(long)]
        school: String,
    },
    /// Move a user's purge date N days later.
    Extend {
        username: String,
        #[arg(long)]
        days: u32,
    },
    /// Delete limbo users whose purge date has come.
    Purge {
        /// Purge as if today were this day (YYYY-MM-DD).
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
        as_of: Option<NaiveDate>,
        /// Only this user, now, whatever its purge date.
        #[arg(long, value_name = "USERNAME")]
        user: Option<String>,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCmd {
    /// Runs, newest first.
    List {
        #[arg(long, value_enum)]
        kind: Option<RunKindArg>,
        #[arg(long)]
        school: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One run: who, when, arguments, counts, errors.
    Show { run_id: String },
    /// The run's log.
    Log { run_id: String },
    /// The archived input of an import, exactly as received (to stdout).
    Input { run_id: String },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RunKindArg {
    Import,
    Purge,
    Sync,
    Verify,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse::<Role>().map_err(|e| e.to_string())
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse(s).ok_or_else(|| format!("'{s}' is not a feed format; use csv, tsv, json, jsonl or xml"))
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("'{s}' is not a date; use YYYY-MM-DD"))
}

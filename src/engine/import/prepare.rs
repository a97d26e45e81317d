//! Preparing an import: read and validate the feed (archiving it on the
//! side), settle the rows whose digest and user are unchanged, plan the rest
//! on one consistent view of the directory, and decide whether the guards
//! allow it. Reads only: the directory and the local state are not changed.

use super::guard;
use super::plan::{Plan, PlanNames, PlanSettings, Reservations};
use super::read::read_feed;
use super::row::{Row, RowError};
use super::scope::Scope;
use super::{ImportRequest, Quiet};
use crate::engine::feed::Format;
use crate::engine::jobs::{Progress, ProgressEvent};
use crate::engine::runs::Run;
use crate::engine::scheme::{EmailScheme, SchemeFields, UsernameScheme};
use crate::engine::state::StateDb;
use crate::engine::{EngineError, EngineResult, Settings};
use crate::model::{Role, User};
use crate::store::{Directory, ReadView, UserStamp};
use chrono::{NaiveDate, Utc};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

/// What a prepared import needs.
pub(super) struct PrepareCtx<'a> {
    pub settings: &'a Settings,
    pub dir: &'a dyn Directory,
    pub state: &'a StateDb,
    pub today: NaiveDate,
    /// Usernames issued by plans not yet written (pipelined imports), and
    /// this plan's place in the batch.
    pub carry: Option<(&'a Mutex<Reservations>, usize)>,
}

/// A planned import, ready to be written.
pub(super) struct Prepared {
    pub source: String,
    pub scope_roles: BTreeSet<Role>,
    /// The scope key the received rows are kept under.
    pub received_scope: String,
    pub format: Format,
    /// Rows that were planned (the others are in `quiet`).
    pub rows: Vec<Row>,
    pub quiet: Vec<Quiet>,
    pub skipped: Vec<(u64, String)>,
    pub errors: Vec<RowError>,
    pub warnings: Vec<String>,
    pub plan: Plan,
    pub refused: Option<String>,
    /// Per record uid: digest and user stamp last recorded for this school.
    pub known: HashMap<String, (String, String)>,
    /// The journal head of the view the plan was made on.
    pub view_head: u64,
    /// Record uids the plan depends on: the feed's and the scope's.
    pub read_keys: HashSet<String>,
}

/// A user's `updated_at` as the received table records it.
pub(super) fn stamp_str(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(super) fn prepare(
    ctx: &PrepareCtx<'_>,
    run: &mut Run,
    req: &ImportRequest,
    progress: &mut dyn Progress,
) -> EngineResult<Prepared> {
    let cfg = &ctx.settings.config.import;
    let source = req.source_uid.clone().unwrap_or_else(|| cfg.source_uid.clone());
    let run_roles: BTreeSet<Role> = req.roles.iter().copied().collect();
    let scope_roles: BTreeSet<Role> = if run_roles.is_empty() {
        Role::ALL.into()
    } else {
        run_roles.clone()
    };
    run.log(&format!(
        "import of {} into school {} (roles: {}, source {source}{})",
        req.file.display(),
        req.school,
        scope_roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
        if req.dry_run { ", dry run" } else { "" }
    ));

    // The input is archived (compressed, exactly as received) while it is
    // read; nothing is written unless the archive is complete.
    let run_dir = run.dir().to_path_buf();
    let (feed, archived) = std::thread::scope(|scope| {
        let archiver = scope.spawn(|| Run::archive(&run_dir, &req.file));
        let feed = read_feed(ctx.settings, req, &run_roles, progress);
        (feed, archiver.join())
    });
    match archived {
        Ok(Ok(name)) => run.set_input(name),
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => return Err(EngineError::Internal("archiving the input failed unexpectedly".into())),
    }
    let feed = feed?;
    let mut warnings = Vec::new();
    if feed.unknown_rejected {
        warnings.push(
            "a rejected row has no readable record_uid, so no user is removed by this run; fix the row and import \
             again"
                .to_string(),
        );
    }
    let valid_rows = feed.rows.len();
    progress.update(ProgressEvent {
        phase: "planning",
        done: 0,
        total: Some(valid_rows as u64),
    });
    let scope = Scope {
        source_uid: &source,
        school: &req.school,
        roles: &scope_roles,
    };
    let usernames = UsernameScheme::parse(&cfg.username_scheme, cfg.username_max_length)
        .map_err(|e| EngineError::BadInput(format!("import.username_scheme: {e}")))?;
    let emails = match cfg.email_scheme.as_str() {
        "" => None,
        s => Some(EmailScheme::parse(s).map_err(|e| EngineError::BadInput(format!("import.email_scheme: {e}")))?),
    };

    // Plan on one consistent view of the directory.
    let dir = ctx.dir;
    let view = ReadView::begin(dir)?;
    let view_head = dir.journal_head()?;
    let stamps = dir.user_stamps(&scope.query())?;
    let received_scope = crate::engine::received::scope_key(&scope_roles);
    let known = ctx.state.received_digests(&source, &req.school, &received_scope)?;
    let stamp_of: HashMap<&str, &UserStamp> = stamps.iter().map(|s| (s.key.record_uid.as_str(), s)).collect();
    let (quiet_rows, rows): (Vec<Row>, Vec<Row>) = feed.rows.into_iter().partition(|r| {
        stamp_of.get(r.record_uid.as_str()).is_some_and(|st| {
            known
                .get(&r.record_uid)
                .is_some_and(|(digest, at)| *digest == r.digest && *at == stamp_str(st.updated_at))
        })
    });
    let quiet: Vec<Quiet> = quiet_rows
        .iter()
        .filter_map(|r| {
            stamp_of.get(r.record_uid.as_str()).map(|st| Quiet {
                line: r.line,
                username: st.username.clone(),
                record_uid: r.record_uid.clone(),
            })
        })
        .collect();
    // Users in scope whose rows are missing: the candidates for removal.
    let in_feed: HashSet<&str> = rows.iter().chain(&quiet_rows).map(|r| r.record_uid.as_str()).collect();
    let leaving: Vec<String> = stamps
        .iter()
        .map(|s| s.key.record_uid.clone())
        .filter(|uid| !in_feed.contains(uid.as_str()) && !feed.protected.contains(uid))
        .collect();
    let wanted: Vec<String> = rows
        .iter()
        .map(|r| r.record_uid.clone())
        .chain(leaving.iter().cloned())
        .collect();
    let loaded = dir.users_by_record_uids(&source, &wanted)?;
    let leaving_set: HashSet<&str> = leaving.iter().map(String::as_str).collect();
    let (leavers, named): (Vec<User>, Vec<User>) = loaded
        .into_iter()
        .partition(|u| leaving_set.contains(u.key.record_uid.as_str()) && scope.contains(u));
    let existing: HashMap<&str, &User> = named.iter().map(|u| (u.key.record_uid.as_str(), u)).collect();
    let settings = PlanSettings {
        scope: scope.clone(),
        limbo_school: &cfg.limbo_school,
        today: ctx.today,
        now: Utc::now(),
        grace_days: cfg.deletion_grace_days,
        deactivation_days: cfg.deactivation_grace_days,
        no_delete: cfg.no_delete,
        activate_new: cfg.activate_new_users,
        usernames: &usernames,
        emails: emails.as_ref(),
    };
    let carry = match ctx.carry {
        Some((m, place)) => Some((
            m.lock()
                .map_err(|_| EngineError::Internal("a parallel import failed".into()))?,
            place,
        )),
        None => None,
    };
    let mut names = PlanNames::new(dir, carry.as_ref().map(|(c, _)| &**c));
    let newcomers: Vec<SchemeFields<'_>> = rows
        .iter()
        .filter(|r| !existing.contains_key(r.record_uid.as_str()))
        .map(|r| SchemeFields {
            firstname: &r.firstname,
            lastname: &r.lastname,
            record_uid: &r.record_uid,
            username: None,
        })
        .collect();
    names.prefetch(&usernames, &newcomers)?;
    let mut plan = super::plan::plan(
        &settings,
        &rows,
        &existing,
        &leavers,
        &feed.protected,
        feed.unknown_rejected,
        &mut names,
    );
    plan.scope_size = stamps.len();
    let issued = names.into_plan(&mut plan);
    if let Some((mut carry, place)) = carry {
        carry.add(place, issued, &plan.counters);
    }
    drop(view);
    let mut errors = feed.errors;
    errors.extend(plan.errors.iter().cloned());
    errors.sort_by_key(|e| e.line);
    let refused = guard::refusal(cfg, &plan, &errors, valid_rows == 0, req.force);
    let read_keys = in_feed
        .iter()
        .map(|s| s.to_string())
        .chain(stamps.iter().map(|s| s.key.record_uid.clone()))
        .collect();
    Ok(Prepared {
        source,
        scope_roles,
        received_scope,
        format: feed.format,
        rows,
        quiet,
        skipped: feed.skipped,
        errors,
        warnings,
        plan,
        refused,
        known,
        view_head,
        read_keys,
    })
}

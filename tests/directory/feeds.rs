//! Feed formats, mapping rules, unchanged-record skipping and run history
//! (issue: feed formats).

use crate::common;

use common::District;
use rollcall::engine::feed::Format;
use rollcall::engine::import::ImportRequest;
use rollcall::engine::jobs::Quiet;
use rollcall::engine::state::StateDb;
use rollcall::engine::{Engine, EngineError, Settings};
use rollcall::model::{Group, GroupKey, GroupKind, JournalEntry, Role, School, User, UserKey};
use rollcall::store::{
    ApplyReport, Batch, Directory, GroupSummary, SqliteDirectory, StoreResult, UserQuery, UserStamp,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs")
}

fn req(school: &str, role: Option<Role>, file: PathBuf) -> ImportRequest {
    ImportRequest {
        school: school.into(),
        roles: role.into_iter().collect(),
        file,
        ..ImportRequest::default()
    }
}

const PLAIN: &str = "record_uid,firstname,lastname,email,birthday,classes,role,schools\n\
                     100,Jörg,Müller,,2012-03-04,\"5a,5b\",student,gsmitte\n\
                     101,Anna,Weiß,anna@x.example,,,teacher,gsmitte\n";

const GERMAN: &str = "\u{feff}Schule;Vorname;Nachname;Klassen;EMail;Geburtstag;Rolle;Personalnummer;Bemerkung\n\
                      gsmitte;Jörg;Müller;5a,5b;;04.03.2012;Schüler;100;neu\n\
                      gsmitte;Anna;Weiß;;anna@x.example;;Lehrerin;101;\n";

const XML_ATTRS: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<export>\n\
  <person Personalnummer=\"100\" Vorname=\"Jörg\" Nachname=\"Müller\" Geburtstag=\"04.03.2012\" Klassen=\"5a 5b\" Rolle=\"Schüler\" Schule=\"gsmitte\"/>\n\
  <person Personalnummer=\"101\" Vorname=\"Anna\" Nachname=\"Weiß\" EMail=\"anna@x.example\" Rolle=\"Lehrerin\" Schule=\"gsmitte\" Bemerkung=\"x\"/>\n\
</export>\n";

/// What must be equal whichever format a district came from.
fn state(d: &District) -> BTreeMap<String, String> {
    d.engine
        .directory()
        .users(&UserQuery::default())
        .unwrap()
        .into_iter()
        .map(|u| {
            (
                u.key.record_uid.clone(),
                format!(
                    "{} {} {} {:?} {:?} {:?} {:?}",
                    u.username, u.firstname, u.lastname, u.email, u.birthday, u.memberships, u.state
                ),
            )
        })
        .collect()
}

#[test]
fn german_csv_and_xml_attributes_map_onto_the_same_state_as_plain_csv() {
    let mut plain = District::new();
    let f = plain.raw_feed(PLAIN.as_bytes(), "csv");
    plain.import_req(req("gsmitte", None, f));

    let de = configs().join("mapping-de.toml");
    let mut german = District::new();
    german.engine = engine_with_config(german.data_dir(), std::slice::from_ref(&de));
    let f = german.raw_feed(GERMAN.as_bytes(), "csv");
    german.import_req(req("gsmitte", None, f));

    let mut xml = District::new();
    xml.engine = engine_with_config(xml.data_dir(), &[de]);
    let f = xml.raw_feed(XML_ATTRS.as_bytes(), "xml");
    let mut r = req("gsmitte", None, f);
    r.mapping = Some(configs().join("mapping-xml-attributes.toml"));
    let o = xml.import_req(r);
    assert_eq!((o.created, o.format), (2, Format::Xml));

    assert_eq!(state(&plain).len(), 2);
    assert_eq!(state(&plain), state(&german));
    assert_eq!(state(&plain), state(&xml));
}

fn engine_with_config(data: &Path, files: &[PathBuf]) -> Engine {
    let opts = rollcall::engine::config::LoadOptions {
        files: files.to_vec(),
        ..Default::default()
    };
    Engine::open(Settings::load(&opts, Some(data.to_path_buf()), false).unwrap()).unwrap()
}

#[test]
fn json_tsv_and_xml_elements_import() {
    let mut d = District::new();
    let json = "[\n{\"record_uid\": \"1\", \"firstname\": \"Max\", \"lastname\": \"M\", \"classes\": [\"5a\"]},\n\
                {\"record_uid\": 2, \"firstname\": \"Eva\", \"lastname\": \"E\", \"workgroups\": [\"Chor\", \"Theater\"]}\n]";
    let f = d.raw_feed(json.as_bytes(), "json");
    let o = d.import_req(req("a", Some(Role::Student), f));
    assert_eq!((o.created, o.format), (2, Format::Json));
    assert_eq!(d.must("1").classes()["a"], ["5a"]);
    assert_eq!(d.must("2").workgroups()["a"], ["Chor", "Theater"]);
    let lines = "{\"record_uid\": \"3\", \"firstname\": \"Bo\", \"lastname\": \"B\"}\n\n{\"record_uid\": \"4\", \"firstname\": \"Al\", \"lastname\": \"A\"}\n";
    let f = d.raw_feed(lines.as_bytes(), "ndjson");
    let o = d.import_req(req("b", Some(Role::Student), f));
    assert_eq!((o.created, o.format), (2, Format::Jsonl));
    let tsv = "record_uid\tfirstname\tlastname\n5\tKim\t\"Quoted\"\n";
    let f = d.raw_feed(tsv.as_bytes(), "tsv");
    let o = d.import_req(req("c", Some(Role::Student), f));
    assert_eq!(o.created, 1);
    assert_eq!(d.must("5").lastname, "\"Quoted\"", "TSV has no quoting");
    let xml = "<users><user><record_uid>6</record_uid><firstname>Li</firstname><lastname>L</lastname>\
               <classes><class>7a</class><class>7b</class></classes></user></users>";
    let f = d.raw_feed(xml.as_bytes(), "xml");
    let o = d.import_req(req("c", Some(Role::Teacher), f));
    assert_eq!(o.created, 1);
    assert_eq!(d.must("6").classes()["c"], ["7a", "7b"]);
    // --format overrides the extension.
    let f = d.raw_feed(
        b"{\"record_uid\": \"7\", \"firstname\": \"Ul\", \"lastname\": \"U\"}\n",
        "txt",
    );
    let mut r = req("d", Some(Role::Student), f);
    r.format = Some(Format::Jsonl);
    assert_eq!(d.import_req(r).created, 1);
}

#[test]
fn utf16_feeds_are_read() {
    let mut d = District::new();
    for (i, (ext, body)) in [
        ("csv", "record_uid;firstname;lastname\n1;Jörg;Müller\n"),
        (
            "json",
            "[{\"record_uid\": \"2\", \"firstname\": \"Ölaf\", \"lastname\": \"Öz\"}]",
        ),
        (
            "xml",
            "<u><p record_uid=\"3\" firstname=\"Ümit\" lastname=\"Ütz\"/></u>",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(body.encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain(body.encode_utf16().flat_map(|u| u.to_be_bytes()))
            .collect();
        for (j, bytes) in [le, be].into_iter().enumerate() {
            let f = d.raw_feed(&bytes, ext);
            let o = d.import_req(req(&format!("s{i}{j}"), Some(Role::Student), f));
            assert_eq!(o.created + o.added_school, 1, "{ext} #{j}");
        }
    }
    assert_eq!(d.must("1").firstname, "Jörg");
    assert_eq!(d.must("3").lastname, "Ütz");
}

/// Every reader, every kind of bad input: a clear error naming the file and
/// where, and nothing written.
#[test]
fn bad_input_in_every_format_writes_nothing() {
    let latin1 = b"record_uid,firstname,lastname\n1,J\xf6rg,M\n".to_vec();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("csv", b"".to_vec(), "empty"),
        ("csv", latin1.clone(), "not UTF-8"),
        (
            "csv",
            b"record_uid,firstname\n1,a\n".to_vec(),
            "missing mandatory column 'lastname'",
        ),
        ("tsv", b"".to_vec(), "empty"),
        (
            "tsv",
            b"record_uid\tfirstname\tlastname\n1\tJ\xf6rg\tM\n".to_vec(),
            "not UTF-8",
        ),
        ("json", b"".to_vec(), "empty"),
        (
            "json",
            b"[{\"record_uid\": \"1\", \"firstname\": \"a\", \"lastname\": \"b\"},\n{\"record_uid\": \"2\"".to_vec(),
            "truncated",
        ),
        ("json", b"[{\"record_uid\": \"1\"} {\"x\": 1}]".to_vec(), "expected ','"),
        ("json", b"[{\"record_uid\": \"M\xfcller\"}]".to_vec(), "not UTF-8"),
        (
            "json",
            b"{\"record_uid\": \"1\", \"nick\": \"x\"}\n".to_vec(),
            "field 'nick' is not an attribute",
        ),
        (
            "jsonl",
            b"{\"record_uid\": \"1\", \"firstname\": \"a\", \"lastname\": \"b\"}\n{\"record_uid\": \n".to_vec(),
            "not valid JSON",
        ),
        ("xml", b"".to_vec(), "no XML element"),
        (
            "xml",
            b"<u>\n<p><record_uid>1</record_uid>\n<firstname>a".to_vec(),
            "truncated",
        ),
        ("xml", b"<u>\n<p><record_uid>1</firstname></p></u>".to_vec(), "line 2"),
        ("xml", b"<u><p record_uid=\"M\xfcller\"/></u>".to_vec(), "UTF-8"),
    ];
    for (ext, bytes, needle) in cases {
        let mut d = District::new();
        let f = d.raw_feed(&bytes, ext);
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        let message = match d.engine.import(&req("a", Some(Role::Student), f), &mut Quiet) {
            Err(e) => e.to_string(),
            Ok(o) => {
                assert!(o.refused.is_some(), "{ext} {needle}: neither error nor refusal");
                o.errors
                    .iter()
                    .map(|e| format!("line {}: {}", e.line, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        };
        assert!(message.contains(needle), "{ext}: '{message}' lacks '{needle}'");
        if !message.starts_with("line") {
            assert!(message.contains(&name), "{ext}: '{message}' does not name the file");
        }
        assert_eq!(d.journal_head(), 0, "{ext} {needle}: something was written");
    }
}

#[test]
fn mapping_rules_with_filters_skip_and_role_overrides() {
    let mut d = District::with_sets(&["import.max_row_errors=-1"]);
    let json = r#"[
 {"id": "1", "vorname": " jörg ", "nachname": "Müller", "mail": "J@X.EXAMPLE", "geburtsdatum": "04.03.2012", "klassen": ["5a"], "status": "aktiv", "kommentar": "x"},
 {"id": "2", "vorname": "Eva", "nachname": "E", "geburtsdatum": "31.02.2012", "status": "aktiv"},
 {"id": "3", "vorname": "Ole", "nachname": "O", "status": "abgemeldet"},
 {"id": "4", "vorname": "Tom", "nachname": "T", "rolle": "teacher", "unterricht": "6a;7b", "status": "aktiv"}
]"#;
    let rules = configs().join("mapping-json.toml");
    let f = d.raw_feed(json.as_bytes(), "json");
    let mut r = req("a", Some(Role::Student), f);
    r.mapping = Some(rules.clone());
    // "rolle" is not in the shipped rules: the import refuses the file.
    let e = d.engine.import(&r, &mut Quiet).unwrap_err().to_string();
    assert!(
        e.contains("field 'rolle' is not mapped") && e.contains("mapping-json.toml"),
        "{e}"
    );
    let json = json.replace("\"rolle\": \"teacher\"", "\"role\": \"teacher\"");
    let f = d.raw_feed(json.as_bytes(), "json");
    let mut r = req("a", None, f);
    r.mapping = Some(rules);
    let e = d.engine.import(&r, &mut Quiet);
    // Rows 1-3 have no role column and no --role: role errors; row 4 is a teacher.
    let o = e.unwrap();
    assert_eq!(o.created, 1);
    assert_eq!(o.skipped, 1, "the 'abgemeldet' record is skipped");
    let teacher = d.must("4");
    assert_eq!(teacher.classes()["a"], ["6a", "7b"], "per-role override");
    assert!(o.errors.iter().any(|e| e.message.contains("role is empty")));
    // With --role student: filters apply, the bad date names rule and line.
    let json2 = r#"[
 {"id": "1", "vorname": " jörg ", "nachname": "Müller", "mail": "J@X.EXAMPLE", "geburtsdatum": "04.03.2012", "klassen": ["5a"], "status": "aktiv"},
 {"id": "2", "vorname": "Eva", "nachname": "E", "geburtsdatum": "31.02.2012", "status": "aktiv"}
]"#;
    let f = d.raw_feed(json2.as_bytes(), "json");
    let mut r = req("a", Some(Role::Student), f);
    r.mapping = Some(configs().join("mapping-json.toml"));
    let o = d.import_req(r);
    let u = d.must("1");
    assert_eq!(
        (u.firstname.as_str(), u.email.as_deref()),
        ("jörg", Some("j@x.example"))
    );
    assert_eq!(u.birthday.unwrap().to_string(), "2012-03-04");
    let err = &o.errors[0];
    assert_eq!(err.line, 3);
    assert!(
        err.message.contains("fields.birthday") && err.message.contains("date(%d.%m.%Y)"),
        "{}",
        err.message
    );
    assert!(d.user("2").is_none());
}

#[test]
fn rules_for_another_format_are_refused() {
    let mut d = District::new();
    let f = d.raw_feed(PLAIN.as_bytes(), "csv");
    let mut r = req("a", None, f);
    r.mapping = Some(configs().join("mapping-json.toml"));
    let e = d.engine.import(&r, &mut Quiet).unwrap_err();
    assert!(matches!(e, EngineError::Usage(_)));
    assert!(e.to_string().contains("are for json feeds"), "{e}");
}

#[test]
fn runs_input_returns_the_exact_bytes_and_history_is_kept() {
    let mut d = District::new();
    let first = PLAIN.replace('\n', "\r\n");
    let f = d.raw_feed(first.as_bytes(), "csv");
    let o1 = d.import_req(req("gsmitte", None, f));
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut d.engine.runs().input(&o1.run_id).unwrap(), &mut got).unwrap();
    assert_eq!(got, first.as_bytes());
    let f = d.raw_feed(PLAIN.replace("Weiß", "Weiss").as_bytes(), "csv");
    let o2 = d.import_req(req("gsmitte", None, f));
    assert_eq!(o2.modified, 1);
    let f = d.raw_feed(PLAIN.lines().take(2).collect::<Vec<_>>().join("\n").as_bytes(), "csv");
    let o3 = d.import_req(req("gsmitte", None, f));
    assert_eq!(o3.to_limbo, 1);
    let sel = rollcall::engine::users::UserSelector::RecordUid {
        record_uid: "101".into(),
        source_uid: None,
    };
    let (_, h) = d.engine.user_history(&sel).unwrap();
    let summary: Vec<(String, String)> = h.iter().map(|e| (e.run_id.clone(), e.event.clone())).collect();
    assert_eq!(
        summary,
        [
            (o3.run_id.clone(), "removed".to_string()),
            (o2.run_id.clone(), "received".to_string()),
            (o1.run_id.clone(), "received".to_string())
        ]
    );
    assert_eq!(h[1].row.as_ref().unwrap()["lastname"], "Weiss");
    assert_eq!(h[2].row.as_ref().unwrap()["lastname"], "Weiß");
    assert!(d.engine.runs().log_text(&o3.run_id).unwrap().contains("to_limbo 1"));
}

/// A directory that counts what the engine asks of it.
struct Counting {
    inner: SqliteDirectory,
    writes: Arc<AtomicU64>,
    users_read: Arc<AtomicU64>,
}

impl Directory for Counting {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn schools(&self) -> StoreResult<Vec<School>> {
        self.inner.schools()
    }
    fn school(&self, name: &str) -> StoreResult<Option<School>> {
        self.inner.school(name)
    }
    fn user(&self, key: &UserKey) -> StoreResult<Option<User>> {
        self.users_read.fetch_add(1, Ordering::SeqCst);
        self.inner.user(key)
    }
    fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.users_read.fetch_add(1, Ordering::SeqCst);
        self.inner.user_by_username(username)
    }
    fn users_by_record_uids(&self, source_uid: &str, record_uids: &[String]) -> StoreResult<Vec<User>> {
        let out = self.inner.users_by_record_uids(source_uid, record_uids)?;
        self.users_read.fetch_add(out.len() as u64, Ordering::SeqCst);
        Ok(out)
    }
    fn users(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        let out = self.inner.users(query)?;
        self.users_read.fetch_add(out.len() as u64, Ordering::SeqCst);
        Ok(out)
    }
    fn for_each_user(&self, query: &UserQuery, visit: &mut dyn FnMut(User) -> bool) -> StoreResult<()> {
        let n = &self.users_read;
        self.inner.for_each_user(query, &mut |u| {
            n.fetch_add(1, Ordering::SeqCst);
            visit(u)
        })
    }
    fn count_users(&self, query: &UserQuery) -> StoreResult<u64> {
        self.inner.count_users(query)
    }
    fn user_stamps(&self, query: &UserQuery) -> StoreResult<Vec<UserStamp>> {
        self.inner.user_stamps(query)
    }
    fn groups(&self, school: Option<&str>, kind: Option<GroupKind>) -> StoreResult<Vec<GroupSummary>> {
        self.inner.groups(school, kind)
    }
    fn group(&self, key: &GroupKey) -> StoreResult<Option<Group>> {
        self.inner.group(key)
    }
    fn drop_empty_groups(&mut self, keys: &[GroupKey]) -> StoreResult<Vec<GroupKey>> {
        self.inner.drop_empty_groups(keys)
    }
    fn username_issued(&self, username: &str) -> StoreResult<bool> {
        self.inner.username_issued(username)
    }
    fn username_counter(&self, base: &str) -> StoreResult<Option<u32>> {
        self.inner.username_counter(base)
    }
    fn usernames_issued(&self, names: &[String]) -> StoreResult<HashSet<String>> {
        self.inner.usernames_issued(names)
    }
    fn username_counters(&self, bases: &[String]) -> StoreResult<HashMap<String, u32>> {
        self.inner.username_counters(bases)
    }
    fn begin_read(&self) -> StoreResult<()> {
        self.inner.begin_read()
    }
    fn end_read(&self) -> StoreResult<()> {
        self.inner.end_read()
    }
    fn apply(&mut self, batch: &Batch) -> StoreResult<ApplyReport> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.apply(batch)
    }
    fn journal_after(&self, after: u64, limit: usize) -> StoreResult<Vec<JournalEntry>> {
        self.inner.journal_after(after, limit)
    }
    fn journal_head(&self) -> StoreResult<u64> {
        self.inner.journal_head()
    }
}

#[test]
fn unchanged_records_are_skipped_without_directory_work() {
    let data = tempfile::tempdir().unwrap();
    let writes = Arc::new(AtomicU64::new(0));
    let users_read = Arc::new(AtomicU64::new(0));
    let settings = Settings::load(&Default::default(), Some(data.path().to_path_buf()), false).unwrap();
    let dir = Counting {
        inner: SqliteDirectory::open(&data.path().join("directory.sqlite")).unwrap(),
        writes: writes.clone(),
        users_read: users_read.clone(),
    };
    let state = StateDb::open(&data.path().join("state.sqlite")).unwrap();
    let mut engine = Engine::with_parts(settings, Box::new(dir), state).unwrap();
    let mut lines = String::from("record_uid,firstname,lastname,classes\n");
    for i in 0..300 {
        lines.push_str(&format!("{i},Kim,Nr{i},5a\n"));
    }
    let feed = data.path().join("f.csv");
    std::fs::write(&feed, &lines).unwrap();
    let r = req("a", Some(Role::Student), feed.clone());
    let o = engine.import(&r, &mut Quiet).unwrap();
    assert_eq!(o.created, 300);
    // Same file again: no directory write, no user read.
    writes.store(0, Ordering::SeqCst);
    users_read.store(0, Ordering::SeqCst);
    let o = engine.import(&r, &mut Quiet).unwrap();
    assert_eq!(o.unchanged, 300);
    assert_eq!(writes.load(Ordering::SeqCst), 0, "no directory writes");
    assert_eq!(users_read.load(Ordering::SeqCst), 0, "no user read in full");
    // One changed row: exactly that user is read and written.
    std::fs::write(&feed, lines.replace("7,Kim,Nr7,5a", "7,Kim,Nr7,6a")).unwrap();
    users_read.store(0, Ordering::SeqCst);
    let o = engine.import(&r, &mut Quiet).unwrap();
    assert_eq!((o.modified, o.unchanged), (1, 299));
    assert_eq!(users_read.load(Ordering::SeqCst), 1);
    assert_eq!(writes.load(Ordering::SeqCst), 1);
    // A change by someone else (another school adds user 5) makes that
    // user's row worth one look, though the row is the same.
    let other = data.path().join("b.csv");
    std::fs::write(&other, "record_uid,firstname,lastname\n5,Kim,Nr5\n").unwrap();
    engine
        .import(&req("b", Some(Role::Student), other), &mut Quiet)
        .unwrap();
    std::fs::write(&feed, lines.replace("7,Kim,Nr7,5a", "7,Kim,Nr7,6a")).unwrap();
    for expected_reads in [1, 0] {
        users_read.store(0, Ordering::SeqCst);
        writes.store(0, Ordering::SeqCst);
        let o = engine.import(&r, &mut Quiet).unwrap();
        assert_eq!(o.unchanged, 300);
        assert_eq!(users_read.load(Ordering::SeqCst), expected_reads);
        assert_eq!(writes.load(Ordering::SeqCst), 0);
    }
}

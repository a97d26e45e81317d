//! The demo district: deterministic generation of schools, people and classes
//! from a [`DistrictSpec`], and writing them out as one CSV feed per school
//! and role for the regular import to read.

use super::names::{self, SchoolKind};
use crate::model::Role;
use chrono::{Days, NaiveDate};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

/// What to generate. The same spec always yields the same district.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DistrictSpec {
    pub schools: usize,
    pub users_per_school: usize,
    pub seed: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoSchool {
    pub name: String,
    pub display_name: String,
}

/// One appearance of a person in one school's feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appearance {
    /// Index into [`District::schools`].
    pub school: usize,
    pub role: Role,
    pub classes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub record_uid: String,
    pub firstname: &'static str,
    pub lastname: &'static str,
    pub birthday: NaiveDate,
    /// The first appearance is the home school.
    pub appearances: Vec<Appearance>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct District {
    pub schools: Vec<DemoSchool>,
    pub people: Vec<Person>,
}

/// One written feed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedFile {
    pub school: String,
    pub role: Role,
    pub path: PathBuf,
    pub rows: usize,
}

/// Ages are relative to the start of the 2026/27 school year.
const REFERENCE_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2026, 9, 1) {
    Some(date) => date,
    None => panic!("invalid reference date"),
};
/// Share of teachers who also teach at one other school.
const SECOND_SCHOOL_SHARE: f64 = 0.03;
/// Target class size used to decide how many parallel classes a grade gets.
const CLASS_SIZE: usize = 25;
const FEED_ROLES: [Role; 3] = [Role::Student, Role::Teacher, Role::Staff];
const FEED_HEADER: &str = "record_uid,firstname,lastname,email,birthday,classes,role,schools";

/// A class of a school: its name and grade (for plausible student ages).
struct Class {
    name: String,
    grade: u8,
}

/// Generates the district described by `spec`.
pub fn generate(spec: &DistrictSpec) -> District {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let kinds: Vec<usize> = (0..spec.schools)
        .map(|_| names::weighted(&mut rng, names::SCHOOL_KINDS, |k| k.weight))
        .collect();
    let schools = names::school_names(&mut rng, &kinds)
        .into_iter()
        .map(|(name, display_name)| DemoSchool { name, display_name })
        .collect();
    let (students, teachers, staff) = role_counts(spec.users_per_school);
    let classes: Vec<Vec<Class>> = kinds
        .iter()
        .map(|&kind| class_list(&names::SCHOOL_KINDS[kind], students))
        .collect();

    let total = spec.schools * spec.users_per_school;
    let width = total.to_string().len().max(7);
    let mut people = Vec::with_capacity(total);
    let mut roles = Vec::with_capacity(spec.users_per_school);
    for school in 0..spec.schools {
        roles.clear();
        roles.extend(std::iter::repeat_n(Role::Student, students));
        roles.extend(std::iter::repeat_n(Role::Teacher, teachers));
        roles.extend(std::iter::repeat_n(Role::Staff, staff));
        roles.shuffle(&mut rng);
        for &role in &roles {
            let record_uid = format!("p{:0width$}", people.len() + 1);
            let person = make_person(&mut rng, record_uid, role, school, &classes);
            people.push(person);
        }
    }
    District { schools, people }
}

/// One person with home `school`: classes, a second school for a few
/// teachers, an age that fits the role (and grade), and a name.
fn make_person(rng: &mut ChaCha8Rng, record_uid: String, role: Role, school: usize, all: &[Vec<Class>]) -> Person {
    let own = classes_of(all, school);
    let (age, classes) = match role {
        Role::Student => match own.choose(rng) {
            Some(class) => {
                let delay = match rng.gen_range(0..100) {
                    0..80 => 0,
                    80..97 => 1,
                    _ => 2,
                };
                ((i32::from(class.grade) + 5 + delay).min(19), vec![class.name.clone()])
            }
            None => (rng.gen_range(6..=19), Vec::new()),
        },
        Role::Teacher => (rng.gen_range(26..=65), pick_classes(rng, own, 3)),
        _ => (rng.gen_range(23..=65), Vec::new()),
    };
    let mut appearances = vec![Appearance { school, role, classes }];
    if role == Role::Teacher && all.len() > 1 && rng.gen_bool(SECOND_SCHOOL_SHARE) {
        let mut other = rng.gen_range(0..all.len() - 1);
        if other >= school {
            other += 1;
        }
        let classes = pick_classes(rng, classes_of(all, other), 2);
        appearances.push(Appearance {
            school: other,
            role,
            classes,
        });
    }
    let (firstname, lastname) = names::person_name(rng, role == Role::Student);
    Person {
        record_uid,
        firstname,
        lastname,
        birthday: birthday(rng, age),
        appearances,
    }
}

/// The classes of school `index` (empty slice if out of range).
fn classes_of(all: &[Vec<Class>], index: usize) -> &[Class] {
    all.get(index).map_or(&[], Vec::as_slice)
}

/// Writes `<dir>/<school>-<role>.csv` for every school and feed role
/// (student, teacher, staff) that has people in it, leaving out people whose
/// record_uid is in `exclude`. A school and role whose people are all
/// excluded gets no file (an empty feed would be refused by the import's
/// guard). Rows are sorted by record_uid; files come in school order, then
/// student, teacher, staff.
pub fn write_feeds(district: &District, dir: &Path, exclude: &HashSet<String>) -> std::io::Result<Vec<FeedFile>> {
    std::fs::create_dir_all(dir)?;
    // Per school and feed role: indices into `district.people`.
    let mut buckets = vec![<[Vec<u32>; 3]>::default(); district.schools.len()];
    for (index, person) in district.people.iter().enumerate() {
        let index = u32::try_from(index).map_err(std::io::Error::other)?;
        for appearance in &person.appearances {
            let slot = FEED_ROLES.iter().position(|&r| r == appearance.role);
            if let (Some(bucket), Some(slot)) = (buckets.get_mut(appearance.school), slot) {
                bucket[slot].push(index);
            }
        }
    }

    let mut files = Vec::new();
    let people = &district.people;
    for (s, (school, bucket)) in district.schools.iter().zip(&mut buckets).enumerate() {
        for (&role, rows) in FEED_ROLES.iter().zip(bucket.iter_mut()) {
            rows.retain(|&i| !exclude.contains(people[i as usize].record_uid.as_str()));
            if rows.is_empty() {
                continue;
            }
            rows.sort_unstable_by_key(|&i| &people[i as usize].record_uid);
            let path = dir.join(format!("{}-{}.csv", school.name, role.as_str()));
            let mut writer = csv::WriterBuilder::new()
                .buffer_capacity(1 << 16)
                .from_writer(File::create(&path)?);
            writer.write_record(FEED_HEADER.split(','))?;
            for person in rows.iter().map(|&i| &people[i as usize]) {
                let here = person.appearances.iter().find(|a| a.school == s && a.role == role);
                let classes = here.map(|a| a.classes.join(",")).unwrap_or_default();
                let birthday = person.birthday.to_string(); // YYYY-MM-DD
                let who = [&*person.record_uid, person.firstname, person.lastname];
                let rest = ["", &birthday, &classes, role.as_str(), &school.name];
                writer.write_record(who.into_iter().chain(rest))?;
            }
            writer.flush()?;
            files.push(FeedFile {
                school: school.name.clone(),
                role,
                path,
                rows: rows.len(),
            });
        }
    }
    Ok(files)
}

/// Writes these e-mail addresses (by record uid) into the `email` column of
/// every feed in `dir`, each file replaced atomically.
pub fn fill_emails(dir: &Path, emails: &std::collections::HashMap<String, String>) -> std::io::Result<()> {
    const EMAIL: usize = 3;
    debug_assert_eq!(FEED_HEADER.split(',').nth(EMAIL), Some("email"));
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "csv") || !path.is_file() {
            continue;
        }
        let tmp = path.with_extension("csv.tmp");
        {
            let mut reader = csv::Reader::from_path(&path)?;
            let mut writer = csv::WriterBuilder::new()
                .buffer_capacity(1 << 16)
                .from_writer(File::create(&tmp)?);
            writer.write_record(reader.headers()?)?;
            for rec in reader.records() {
                let rec = rec?;
                let email = rec.get(0).and_then(|uid| emails.get(uid));
                let row = rec
                    .iter()
                    .enumerate()
                    .map(|(i, v)| if i == EMAIL { email.map_or(v, String::as_str) } else { v });
                writer.write_record(row)?;
            }
            writer.flush()?;
        }
        std::fs::rename(&tmp, &path)?;
    }
    Ok(())
}

/// Students, teachers and staff per school: about 85% / 12% / 3%, with at
/// least one teacher once a school has two people.
fn role_counts(n: usize) -> (usize, usize, usize) {
    let teachers = ((n * 12 + 50) / 100).max(usize::from(n >= 2));
    let staff = ((n * 3 + 50) / 100).min(n - teachers);
    (n - teachers - staff, teachers, staff)
}

/// Classes "1a".."4c" (Grundschule) or "5a".."10d" and so on: enough
/// parallel classes for about [`CLASS_SIZE`] students each, within the
/// type's maximum, and at least one class per grade.
fn class_list(kind: &SchoolKind, students: usize) -> Vec<Class> {
    let grades = usize::from(kind.last_grade - kind.first_grade + 1);
    let parallel = students
        .div_ceil(grades * CLASS_SIZE)
        .clamp(1, usize::from(kind.max_parallel));
    let mut classes = Vec::with_capacity(grades * parallel);
    for grade in kind.first_grade..=kind.last_grade {
        for letter in (b'a'..).take(parallel) {
            classes.push(Class {
                name: format!("{grade}{}", char::from(letter)),
                grade,
            });
        }
    }
    classes
}

/// One to `max` distinct classes from `classes`, in class order.
fn pick_classes(rng: &mut ChaCha8Rng, classes: &[Class], max: usize) -> Vec<String> {
    if classes.is_empty() {
        return Vec::new();
    }
    let count = rng.gen_range(1..=max.min(classes.len()));
    let mut picked = rand::seq::index::sample(rng, classes.len(), count).into_vec();
    picked.sort_unstable();
    picked.into_iter().map(|i| classes[i].name.clone()).collect()
}

/// A birthday that makes someone exactly `age` years old on the reference date.
fn birthday(rng: &mut ChaCha8Rng, age: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026 - age, 9, 1)
        .and_then(|latest| latest.checked_sub_days(Days::new(rng.gen_range(0..365))))
        .unwrap_or(REFERENCE_DATE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{validate_class_name, validate_school_name};

    fn spec(schools: usize, users_per_school: usize) -> DistrictSpec {
        let seed = 42;
        DistrictSpec {
            schools,
            users_per_school,
            seed,
        }
    }

    type Feed = (FeedFile, Vec<csv::StringRecord>);

    /// Writes the feeds into a fresh temp dir and reads every file back.
    fn feeds(district: &District, exclude: &[&str]) -> (tempfile::TempDir, Vec<Feed>) {
        let dir = tempfile::tempdir().unwrap();
        let exclude = exclude.iter().map(|uid| uid.to_string()).collect();
        let files = write_feeds(district, dir.path(), &exclude).unwrap();
        let header: Vec<&str> = FEED_HEADER.split(',').collect();
        let read = |file: FeedFile| {
            let mut reader = csv::Reader::from_path(&file.path).unwrap();
            assert_eq!(reader.headers().unwrap(), header);
            let rows: Vec<_> = reader.records().map(Result::unwrap).collect();
            assert_eq!(rows.len(), file.rows);
            (file, rows)
        };
        (dir, files.into_iter().map(read).collect())
    }

    fn total_rows(feeds: &[Feed]) -> usize {
        feeds.iter().map(|f| f.1.len()).sum()
    }

    #[test]
    fn same_spec_gives_the_same_district_and_identical_feeds() {
        let (a, b) = (generate(&spec(6, 300)), generate(&spec(6, 300)));
        assert_eq!(a, b);
        let other = DistrictSpec {
            seed: 43,
            ..spec(6, 300)
        };
        assert_ne!(a, generate(&other));
        let ((_da, fa), (_db, fb)) = (feeds(&a, &[]), feeds(&b, &[]));
        assert_eq!(fa.len(), fb.len());
        let read = |f: &Feed| {
            (
                f.0.path.file_name().map(|n| n.to_owned()),
                std::fs::read(&f.0.path).ok(),
            )
        };
        assert!(fa.iter().zip(&fb).all(|(x, y)| read(x) == read(y)));
    }

    #[test]
    fn roles_classes_ages_and_record_uids_are_plausible() {
        assert_eq!((role_counts(1), role_counts(2)), ((1, 0, 0), (1, 1, 0)));
        let d = generate(&spec(8, 1000));
        let uids: HashSet<&str> = d.people.iter().map(|p| p.record_uid.as_str()).collect();
        assert_eq!((uids.len(), &*d.people[0].record_uid), (8000, "p0000001"));
        for school in 0..8 {
            let home = d.people.iter().map(|p| &p.appearances[0]);
            let home: Vec<_> = home.filter(|a| a.school == school).collect();
            let count = |role| home.iter().filter(|a| a.role == role).count();
            assert_eq!(home.len(), 1000);
            assert!((830..=870).contains(&count(Role::Student)));
            assert!((100..=140).contains(&count(Role::Teacher)));
            assert!((20..=40).contains(&count(Role::Staff)));
        }
        for p in &d.people {
            let home = &p.appearances[0];
            let age = REFERENCE_DATE.years_since(p.birthday).unwrap();
            let (ages, classes) = match home.role {
                Role::Student => (6..=19, 1..=1),
                Role::Teacher => (23..=65, 1..=3),
                _ => (23..=65, 0..=0),
            };
            assert!(ages.contains(&age), "{p:?}");
            assert!(classes.contains(&home.classes.len()), "{p:?}");
            let mut all_classes = p.appearances.iter().flat_map(|a| &a.classes);
            assert!(all_classes.all(|c| validate_class_name(c).is_ok()));
            let gs = d.schools[home.school].name.starts_with("gs-");
            if gs && home.role == Role::Student {
                let class = home.classes[0].as_bytes();
                assert!(matches!(class, [b'1'..=b'4', b'a'..=b'c']), "{p:?}");
            }
        }
    }

    #[test]
    fn some_teachers_teach_in_two_schools_and_appear_in_both_feeds() {
        let d = generate(&spec(10, 500));
        let multi: Vec<&Person> = d.people.iter().filter(|p| p.appearances.len() > 1).collect();
        assert!((5..=40).contains(&multi.len()), "{} of 600", multi.len());
        let (_dir, files) = feeds(&d, &[]);
        assert_eq!(total_rows(&files), d.people.len() + multi.len());
        for p in multi {
            let [home, other] = &p.appearances[..] else {
                panic!("{p:?}")
            };
            assert_ne!(home.school, other.school);
            for a in [home, other] {
                assert!(a.role == Role::Teacher && !a.classes.is_empty());
                let school = d.schools[a.school].name.as_str();
                let feed = files.iter().find(|f| f.0.school == school && f.0.role == a.role);
                let row = feed.unwrap().1.iter().find(|r| r[0] == p.record_uid);
                let classes = a.classes.join(",");
                let row: Vec<&str> = row.unwrap().iter().skip(5).collect();
                assert_eq!(row, [&*classes, "teacher", school]);
            }
        }
    }

    #[test]
    fn school_names_are_valid_and_unique_for_3000_schools() {
        let d = generate(&DistrictSpec {
            users_per_school: 0,
            ..spec(3000, 0)
        });
        let names: HashSet<&str> = d.schools.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), 3000);
        let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-';
        for s in &d.schools {
            assert!(s.name.bytes().all(ok) && !s.name.starts_with('-'), "{}", s.name);
            assert!(validate_school_name(&s.name).is_ok() && !s.display_name.is_empty());
        }
        assert!(names.contains("gs-mitte") && names.contains("gs-mitte-2"));
        assert!(d.schools.iter().any(|s| s.display_name == "Grundschule Süd"));
    }

    #[test]
    fn feeds_have_the_documented_format_and_honour_exclude() {
        let d = generate(&spec(2, 60));
        let (dir, all) = feeds(&d, &[]);
        let order: Vec<_> = all.iter().map(|f| (&*f.0.school, f.0.role)).collect();
        let (s0, s1) = (&*d.schools[0].name, &*d.schools[1].name);
        let (student, teacher, staff) = (Role::Student, Role::Teacher, Role::Staff);
        let expected = [student, teacher, staff].map(|r| (s0, r)).into_iter();
        let expected: Vec<_> = expected.chain([student, teacher, staff].map(|r| (s1, r))).collect();
        assert_eq!(order, expected);
        assert_eq!(all[1].0.path, dir.path().join(format!("{s0}-teacher.csv")));
        let text = std::fs::read_to_string(&all[1].0.path).unwrap();
        assert!(text.starts_with(&format!("{FEED_HEADER}\np")) && text.contains(",\""));
        for (_, rows) in &all {
            assert!(rows.windows(2).all(|w| w[0][0] < w[1][0]));
            let ok = |r: &csv::StringRecord| r[3].is_empty() && r[4].parse::<NaiveDate>().is_ok();
            assert!(rows.iter().all(ok));
        }

        // Leave out every 7th person and all staff of the first school.
        let staff0: Vec<&str> = all[2].1.iter().map(|r| &r[0]).collect();
        let mut exclude: Vec<&str> = d.people.iter().step_by(7).map(|p| &*p.record_uid).collect();
        exclude.extend(staff0);
        let (_dir, some) = feeds(&d, &exclude);
        assert_eq!(some.len(), all.len() - 1);
        assert!(some.iter().all(|f| !(f.0.school == s0 && f.0.role == staff)));
        assert!(some.iter().flat_map(|f| &f.1).all(|r| !exclude.contains(&&r[0])));
        let kept = d.people.iter().filter(|p| !exclude.contains(&&*p.record_uid));
        assert_eq!(total_rows(&some), kept.map(|p| p.appearances.len()).sum::<usize>());
    }

    #[test]
    fn twenty_thousand_people_generate_and_write() {
        let d = generate(&spec(10, 2000));
        let (_dir, files) = feeds(&d, &[]);
        assert_eq!(d.people.len(), 20_000);
        assert_eq!(
            total_rows(&files),
            d.people.iter().map(|p| p.appearances.len()).sum::<usize>()
        );
    }
}

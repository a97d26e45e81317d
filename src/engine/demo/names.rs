//! Names for the demo district: static tables of first and last names by
//! origin (German heavy, with umlauts and a realistic share of Turkish,
//! Polish, Russian, Arabic, Italian, Balkan and other names), edge-case names
//! (hyphens, double names, particles, apostrophes, accents), school types and
//! places, and the weighted picking of person and school names from them.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;

/// A name origin: its weight among all people and its name tables.
pub(super) struct Origin {
    /// Relative share of people with this origin (sums to about 1000).
    pub weight: u32,
    /// First names for children (students).
    pub young_female: &'static [&'static str],
    pub young_male: &'static [&'static str],
    /// First names for adults (teachers, staff).
    pub female: &'static [&'static str],
    pub male: &'static [&'static str],
    pub last: &'static [&'static str],
    /// Whether hyphenated German first names ("Anna-Lena") fit this origin.
    pub hyphenated_first: bool,
}

/// A school type: id prefix, display name, share and class layout.
pub(super) struct SchoolKind {
    pub prefix: &'static str,
    pub display: &'static str,
    pub weight: u32,
    pub first_grade: u8,
    pub last_grade: u8,
    /// At most this many parallel classes per grade (a, b, c, …).
    pub max_parallel: u8,
}

/// Unique school names: a type prefix plus a place, in a shuffled order per
/// type; once a type has used every place, names get a `-2`, `-3`, … suffix.
pub(super) fn school_names(rng: &mut ChaCha8Rng, kinds: &[usize]) -> Vec<(String, String)> {
    let mut orders: Vec<Vec<usize>> = SCHOOL_KINDS
        .iter()
        .map(|_| {
            let mut order: Vec<usize> = (0..PLACES.len()).collect();
            order.shuffle(rng);
            order
        })
        .collect();
    let mut used = vec![0usize; SCHOOL_KINDS.len()];
    kinds
        .iter()
        .map(|&k| {
            let kind = &SCHOOL_KINDS[k];
            let n = used[k];
            used[k] += 1;
            let (place_id, place_display) = PLACES[orders[k][n % orders[k].len()]];
            let round = n / orders[k].len() + 1;
            let (mut name, mut display_name) = (
                format!("{}-{place_id}", kind.prefix),
                format!("{} {place_display}", kind.display),
            );
            if round > 1 {
                let _ = write!(name, "-{round}");
                let _ = write!(display_name, " {round}");
            }
            if n + 1 == orders[k].len() {
                orders[k].shuffle(rng);
            }
            (name, display_name)
        })
        .collect()
}

/// A first and last name: an origin by weight, then names from its tables,
/// with a few percent hyphenated first names, double and particle last names.
pub(super) fn person_name(rng: &mut ChaCha8Rng, young: bool) -> (&'static str, &'static str) {
    let origin: &Origin = &ORIGINS[weighted(rng, ORIGINS, |o| o.weight)];
    let female = rng.gen_bool(0.5);
    let german = &ORIGINS[0]; // the German tables
    let first = match rng.gen_range(0..100) {
        0..3 if origin.hyphenated_first => {
            if female {
                HYPHENATED_FEMALE
            } else {
                HYPHENATED_MALE
            }
        }
        // Children of immigrant families often get a German first name.
        3..15 if young && !origin.hyphenated_first => {
            if female {
                german.young_female
            } else {
                german.young_male
            }
        }
        _ => match (female, young) {
            (true, true) => origin.young_female,
            (false, true) => origin.young_male,
            (true, false) => origin.female,
            (false, false) => origin.male,
        },
    };
    let last = match rng.gen_range(0..1000) {
        0..20 => DOUBLE_LAST,
        20..35 => PARTICLE_LAST,
        _ => origin.last,
    };
    (pick(rng, first), pick(rng, last))
}

fn pick(rng: &mut ChaCha8Rng, table: &[&'static str]) -> &'static str {
    table[rng.gen_range(0..table.len())]
}

/// The index of an item picked with probability proportional to its weight.
pub(super) fn weighted<T>(rng: &mut ChaCha8Rng, items: &[T], weight: impl Fn(&T) -> u32) -> usize {
    let total: u32 = items.iter().map(&weight).sum();
    let mut x = rng.gen_range(0..total.max(1));
    for (index, item) in items.iter().enumerate() {
        let w = weight(item);
        if x < w {
            return index;
        }
        x -= w;
    }
    items.len().saturating_sub(1)
}

pub(super) const SCHOOL_KINDS: &[SchoolKind] = &[
    SchoolKind {
        prefix: "gs",
        display: "Grundschule",
        weight: 40,
        first_grade: 1,
        last_grade: 4,
        max_parallel: 3,
    },
    SchoolKind {
        prefix: "gym",
        display: "Gymnasium",
        weight: 15,
        first_grade: 5,
        last_grade: 10,
        max_parallel: 4,
    },
    SchoolKind {
        prefix: "rs",
        display: "Realschule",
        weight: 12,
        first_grade: 5,
        last_grade: 10,
        max_parallel: 4,
    },
    SchoolKind {
        prefix: "ms",
        display: "Mittelschule",
        weight: 12,
        first_grade: 5,
        last_grade: 10,
        max_parallel: 4,
    },
    SchoolKind {
        prefix: "igs",
        display: "Gesamtschule",
        weight: 11,
        first_grade: 5,
        last_grade: 10,
        max_parallel: 4,
    },
    SchoolKind {
        prefix: "bs",
        display: "Berufsschule",
        weight: 10,
        first_grade: 11,
        last_grade: 13,
        max_parallel: 4,
    },
];

/// Districts and places: (id part, display part). Ids are `[a-z0-9-]`.
pub(super) const PLACES: &[(&str, &str)] = &[
    ("mitte", "Mitte"),
    ("nord", "Nord"),
    ("sued", "Süd"),
    ("ost", "Ost"),
    ("west", "West"),
    ("altstadt", "Altstadt"),
    ("neustadt", "Neustadt"),
    ("am-see", "am See"),
    ("am-park", "am Park"),
    ("am-markt", "am Markt"),
    ("am-wall", "am Wall"),
    ("an-der-linde", "an der Linde"),
    ("an-der-aue", "an der Aue"),
    ("im-grund", "im Grund"),
    ("lindenhof", "Lindenhof"),
    ("eichenweg", "Eichenweg"),
    ("birkenfeld", "Birkenfeld"),
    ("rosenau", "Rosenau"),
    ("sonnenberg", "Sonnenberg"),
    ("kirchberg", "Kirchberg"),
    ("muehlenbach", "Mühlenbach"),
    ("schlossberg", "Schlossberg"),
    ("hafen", "Hafen"),
    ("bahnhof", "Bahnhof"),
    ("waldstadt", "Waldstadt"),
    ("feldmark", "Feldmark"),
    ("hoehenweg", "Höhenweg"),
    ("suedstadt", "Südstadt"),
    ("nordviertel", "Nordviertel"),
    ("weststadt", "Weststadt"),
    ("oststadt", "Oststadt"),
    ("auf-der-hoehe", "auf der Höhe"),
    ("koenigshof", "Königshof"),
    ("bruehl", "Brühl"),
    ("gruenau", "Grünau"),
    ("loewenstein", "Löwenstein"),
    ("talblick", "Talblick"),
    ("rheinufer", "Rheinufer"),
    ("elbufer", "Elbufer"),
    ("am-stadtwald", "am Stadtwald"),
    ("kastanienallee", "Kastanienallee"),
    ("ahornweg", "Ahornweg"),
    ("fichtenhain", "Fichtenhain"),
    ("tannenbusch", "Tannenbusch"),
    ("wiesengrund", "Wiesengrund"),
    ("buchholz", "Buchholz"),
    ("dorfmitte", "Dorfmitte"),
    ("hasenheide", "Hasenheide"),
    ("kreuzberg", "Kreuzberg"),
    ("steinfeld", "Steinfeld"),
    ("marienthal", "Marienthal"),
    ("st-georg", "St. Georg"),
    ("ueberseestadt", "Überseestadt"),
    ("ulmenhof", "Ulmenhof"),
    ("hollerbusch", "Hollerbusch"),
    ("seeblick", "Seeblick"),
    ("am-turm", "am Turm"),
    ("goetheplatz", "Goetheplatz"),
    ("schillerhoehe", "Schillerhöhe"),
    ("humboldthain", "Humboldthain"),
];

pub(super) const ORIGINS: &[Origin] = &[
    Origin {
        weight: 700,
        young_female: GERMAN_GIRLS,
        young_male: GERMAN_BOYS,
        female: GERMAN_WOMEN,
        male: GERMAN_MEN,
        last: GERMAN_LAST,
        hyphenated_first: true,
    },
    Origin {
        weight: 80,
        young_female: TURKISH_FEMALE,
        young_male: TURKISH_MALE,
        female: TURKISH_FEMALE,
        male: TURKISH_MALE,
        last: TURKISH_LAST,
        hyphenated_first: false,
    },
    Origin {
        weight: 40,
        young_female: POLISH_FEMALE,
        young_male: POLISH_MALE,
        female: POLISH_FEMALE,
        male: POLISH_MALE,
        last: POLISH_LAST,
        hyphenated_first: false,
    },
    Origin {
        weight: 40,
        young_female: RUSSIAN_FEMALE,
        young_male: RUSSIAN_MALE,
        female: RUSSIAN_FEMALE,
        male: RUSSIAN_MALE,
        last: RUSSIAN_LAST,
        hyphenated_first: false,
    },
    Origin {
        weight: 50,
        young_female: ARABIC_FEMALE,
        young_male: ARABIC_MALE,
        female: ARABIC_FEMALE,
        male: ARABIC_MALE,
        last: ARABIC_LAST,
        hyphenated_first: false,
    },
    Origin {
        weight: 25,
        young_female: ITALIAN_FEMALE,
        young_male: ITALIAN_MALE,
        female: ITALIAN_FEMALE,
        male: ITALIAN_MALE,
        last: ITALIAN_LAST,
        hyphenated_first: false,
    },
    Origin {
        weight: 30,
        young_female: BALKAN_FEMALE,
        young_male: BALKAN_MALE,
        female: BALKAN_FEMALE,
        male: BALKAN_MALE,
        last: BALKAN_LAST,
        hyphenated_first: false,
    },
    Origin {
        weight: 15,
        young_female: ROMANCE_FEMALE,
        young_male: ROMANCE_MALE,
        female: ROMANCE_FEMALE,
        male: ROMANCE_MALE,
        last: ROMANCE_LAST,
        hyphenated_first: false,
    },
    Origin {
        weight: 10,
        young_female: ENGLISH_FEMALE,
        young_male: ENGLISH_MALE,
        female: ENGLISH_FEMALE,
        male: ENGLISH_MALE,
        last: ENGLISH_LAST,
        hyphenated_first: false,
    },
    Origin {
        weight: 10,
        young_female: VIETNAMESE_FEMALE,
        young_male: VIETNAMESE_MALE,
        female: VIETNAMESE_FEMALE,
        male: VIETNAMESE_MALE,
        last: VIETNAMESE_LAST,
        hyphenated_first: false,
    },
];

/// Modern first names for German children.
#[rustfmt::skip]
pub(super) const GERMAN_GIRLS: &[&str] = &[
    "Mia", "Emma", "Sophia", "Hannah", "Emilia", "Lina", "Marie", "Mila", "Ella", "Lea", "Clara",
    "Leonie", "Anna", "Lena", "Luisa", "Amelie", "Frieda", "Johanna", "Charlotte", "Ida", "Lia",
    "Greta", "Mathilda", "Paula", "Lotta", "Maja", "Sophie", "Nele", "Jule", "Pia", "Marlene",
    "Helena", "Laura", "Lara", "Finja", "Merle", "Romy", "Zoe", "Liv", "Tilda", "Jana", "Annika",
    "Svenja", "Theresa", "Hanne", "Käthe", "Thea",
];

#[rustfmt::skip]
pub(super) const GERMAN_BOYS: &[&str] = &[
    "Noah", "Leon", "Paul", "Ben", "Finn", "Elias", "Felix", "Jonas", "Luis", "Henry", "Emil",
    "Louis", "Lukas", "Theo", "Anton", "Jakob", "Maximilian", "Oskar", "Moritz", "Julian", "Niklas",
    "Tim", "Jan", "Till", "Ole", "Jannik", "Fabian", "Hannes", "Malte", "Mats", "Linus", "Karl",
    "Friedrich", "Jonathan", "Tom", "Erik", "Lennard", "Sören", "Mattis", "Bjarne", "Fiete", "Jörn",
    "Lasse", "Piet", "Konstantin", "Vincent",
];

/// First names for German adults (born roughly 1960–2000).
#[rustfmt::skip]
pub(super) const GERMAN_WOMEN: &[&str] = &[
    "Sabine", "Petra", "Claudia", "Andrea", "Susanne", "Birgit", "Monika", "Gabriele", "Ute",
    "Heike", "Karin", "Kerstin", "Silke", "Anja", "Nicole", "Stefanie", "Katrin", "Christina",
    "Julia", "Sandra", "Melanie", "Daniela", "Tanja", "Martina", "Bärbel", "Jutta", "Renate",
    "Ingrid", "Dörte", "Gisela", "Brigitte", "Elke", "Doris", "Anke", "Britta", "Maren", "Ines",
    "Simone", "Yvonne", "Jessica", "Sarah", "Franziska", "Christiane", "Cornelia", "Katharina",
    "Kathrin", "Antje", "Regina", "Sünje", "Wiebke",
];

#[rustfmt::skip]
pub(super) const GERMAN_MEN: &[&str] = &[
    "Thomas", "Michael", "Andreas", "Stefan", "Frank", "Jürgen", "Jörg", "Uwe", "Klaus", "Peter",
    "Wolfgang", "Dieter", "Matthias", "Markus", "Christian", "Martin", "Alexander", "Holger",
    "Ralf", "Torsten", "Sven", "Dirk", "Bernd", "Rüdiger", "Günter", "Björn", "Sören", "Jens",
    "Kai", "Lars", "Carsten", "Tobias", "Sebastian", "Daniel", "Florian", "Benedikt", "Hans",
    "Gerd", "Reinhard", "Joachim", "Volker", "Heiko", "Götz", "Sönke", "Ulf", "Hendrik", "Philipp",
    "Jochen", "Malte", "Henning",
];

#[rustfmt::skip]
pub(super) const HYPHENATED_FEMALE: &[&str] = &[
    "Anna-Lena", "Marie-Sophie", "Lisa-Marie", "Anna-Maria", "Eva-Maria", "Lea-Sophie",
    "Hanna-Lotta", "Marie-Luise", "Ann-Kathrin", "Anne-Kathrin",
];

#[rustfmt::skip]
pub(super) const HYPHENATED_MALE: &[&str] = &[
    "Jan-Niklas", "Karl-Heinz", "Hans-Peter", "Jan-Hendrik", "Lars-Ole", "Hans-Jürgen",
    "Klaus-Dieter", "Ben-Luca", "Jan-Ole", "Hans-Günther",
];

#[rustfmt::skip]
pub(super) const GERMAN_LAST: &[&str] = &[
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
    "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
    "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner",
    "Schmitz", "Krause", "Meier", "Lehmann", "Schmid", "Schulze", "Maier", "Köhler", "Herrmann",
    "König", "Walter", "Mayer", "Huber", "Kaiser", "Fuchs", "Peters", "Lang", "Scholz", "Möller",
    "Weiß", "Jung", "Hahn", "Schubert", "Vogel", "Friedrich", "Keller", "Günther", "Frank",
    "Berger", "Winkler", "Roth", "Beck", "Lorenz", "Baumann", "Franke", "Albrecht", "Schuster",
    "Simon", "Ludwig", "Böhm", "Winter", "Kraus", "Martin", "Schumacher", "Krämer", "Vogt", "Stein",
    "Jäger", "Otto", "Sommer", "Groß", "Seidel", "Heinrich", "Brandt", "Haas", "Schreiber", "Graf",
    "Schulte", "Dietrich", "Ziegler", "Kuhn", "Kühn", "Pohl", "Engel", "Horn", "Busch", "Bergmann",
    "Voigt", "Sauer", "Arnold", "Wolff", "Pfeiffer", "Lindner", "Ernst", "Böttcher", "Förster",
    "Hübner", "Gärtner", "Brückner", "Thiel", "Kühne", "Lüdtke", "Jürgens", "Büttner", "Göbel",
    "Rößler", "Grün", "Fröhlich", "Nüßlein", "Strauß", "Süß", "Löffler", "Bräuer", "Kößler",
    "Öhler", "Ulrich", "Sander", "Witt", "Behrens", "Janßen", "Petersen", "Jansen", "Hansen",
    "Ahrens", "Thießen", "Brinkmann", "Westphal", "Reuter", "Kessler", "Lenz", "Heß", "Bär",
    "Mühlbauer", "Grünewald", "Blümel", "Hölzl", "Wörner", "Dörr", "Höfer", "Lührs", "Röder",
    "Wagenknecht", "Ostermann", "Eckert", "Thomsen", "Claßen",
];

/// Double last names (married couples keeping both).
#[rustfmt::skip]
pub(super) const DOUBLE_LAST: &[&str] = &[
    "Müller-Lüdenscheidt", "Schmidt-Hansen", "Meyer-Landrut", "Weber-Özdemir", "Schulze-Böing",
    "Hoffmann-Kaya", "Becker-Nowak", "Klein-Schäfer", "Lange-Rossi", "Krüger-Petersen",
    "Leutheusser-Schnarrenberger", "Wagner-Iwanow", "Fischer-Haddad", "Koch-Möller",
];

/// Last names with particles and spaces.
#[rustfmt::skip]
pub(super) const PARTICLE_LAST: &[&str] = &[
    "von der Heide", "von Bülow", "van den Berg", "von Weizsäcker", "von Hagen", "vom Bruch",
    "van der Meer", "de Vries", "von Rönne", "zu Dohna", "ter Horst", "von dem Knesebeck",
    "de la Cruz", "auf der Mauer",
];

#[rustfmt::skip]
pub(super) const TURKISH_FEMALE: &[&str] = &[
    "Elif", "Zeynep", "Ayşe", "Fatma", "Emine", "Merve", "Büşra", "Derya", "Selin", "Özlem",
    "Gülşen", "Hülya", "Nur", "Esra", "Defne", "Ecrin", "Yağmur", "Sıla", "İrem", "Şeyma",
];

#[rustfmt::skip]
pub(super) const TURKISH_MALE: &[&str] = &[
    "Mehmet", "Mustafa", "Ahmet", "Emre", "Yusuf", "Can", "Deniz", "Burak", "Hakan", "Murat",
    "Ömer", "Çağan", "Eren", "Kerem", "Göktuğ", "Oğuz", "Serkan", "Tarık", "Barış", "İbrahim",
];

#[rustfmt::skip]
pub(super) const TURKISH_LAST: &[&str] = &[
    "Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Yıldırım", "Öztürk", "Aydın", "Özdemir",
    "Arslan", "Doğan", "Kılıç", "Aslan", "Çetin", "Kara", "Koç", "Kurt", "Özkan", "Şimşek", "Ölçer",
    "Polat", "Erdoğan", "Güneş", "Aksoy", "Keskin", "Korkmaz", "Uçar",
];

#[rustfmt::skip]
pub(super) const POLISH_FEMALE: &[&str] = &[
    "Agnieszka", "Katarzyna", "Małgorzata", "Magdalena", "Zofia", "Joanna", "Aleksandra",
    "Weronika", "Natalia", "Ewa",
];

#[rustfmt::skip]
pub(super) const POLISH_MALE: &[&str] = &[
    "Piotr", "Krzysztof", "Tomasz", "Paweł", "Łukasz", "Jakub", "Michał", "Wojciech", "Szymon",
    "Kacper",
];

#[rustfmt::skip]
pub(super) const POLISH_LAST: &[&str] = &[
    "Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski",
    "Zieliński", "Szymański", "Woźniak", "Dąbrowski", "Kozłowski", "Jankowski", "Mazur", "Krawczyk",
    "Grabowski",
];

#[rustfmt::skip]
pub(super) const RUSSIAN_FEMALE: &[&str] = &[
    "Olga", "Natalja", "Swetlana", "Jelena", "Tatjana", "Anastasia", "Darja", "Ksenia", "Irina",
    "Alina", "Polina", "Viktoria",
];

#[rustfmt::skip]
pub(super) const RUSSIAN_MALE: &[&str] = &[
    "Dmitri", "Sergej", "Alexej", "Wladimir", "Andrej", "Nikolai", "Iwan", "Maxim", "Artjom",
    "Kirill", "Jewgeni",
];

#[rustfmt::skip]
pub(super) const RUSSIAN_LAST: &[&str] = &[
    "Iwanow", "Smirnow", "Petrow", "Kusnezow", "Popow", "Wolkow", "Schewtschenko", "Kowalenko",
    "Bondarenko", "Melnyk", "Tkachenko", "Morosow", "Fedorow", "Dück", "Klassen", "Penner",
];

#[rustfmt::skip]
pub(super) const ARABIC_FEMALE: &[&str] = &[
    "Fatima", "Aisha", "Mariam", "Layla", "Noor", "Yasmin", "Amira", "Leyla", "Huda", "Rania",
    "Salma", "Sara",
];

#[rustfmt::skip]
pub(super) const ARABIC_MALE: &[&str] = &[
    "Mohammed", "Ahmad", "Ali", "Omar", "Hassan", "Khaled", "Youssef", "Karim", "Samir", "Tarek",
    "Bilal", "Hamza", "Amir",
];

#[rustfmt::skip]
pub(super) const ARABIC_LAST: &[&str] = &[
    "Al-Hassan", "Haddad", "Khalil", "Nasser", "Mansour", "Saleh", "Abdullah", "Hamdan", "Darwish",
    "Haidar", "El-Sayed", "Ibrahim", "Aziz", "Rahman", "Suleiman", "Al-Khatib",
];

#[rustfmt::skip]
pub(super) const ITALIAN_FEMALE: &[&str] = &[
    "Giulia", "Francesca", "Chiara", "Alessia", "Sofia", "Martina", "Valentina", "Elena",
];

#[rustfmt::skip]
pub(super) const ITALIAN_MALE: &[&str] = &[
    "Luca", "Marco", "Giuseppe", "Alessandro", "Matteo", "Lorenzo", "Giovanni", "Nicolò", "Davide",
];

#[rustfmt::skip]
pub(super) const ITALIAN_LAST: &[&str] = &[
    "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino",
    "Greco", "Bruno", "Gallo", "Conti", "De Luca", "D'Angelo", "Dell'Anna", "Lo Bianco",
];

#[rustfmt::skip]
pub(super) const BALKAN_FEMALE: &[&str] = &[
    "Ana", "Milica", "Jelena", "Ivana", "Maja", "Mirela", "Amra", "Lejla",
];

#[rustfmt::skip]
pub(super) const BALKAN_MALE: &[&str] = &[
    "Luka", "Marko", "Stefan", "Nikola", "Ivan", "Dragan", "Emir", "Edin", "Armin",
];

#[rustfmt::skip]
pub(super) const BALKAN_LAST: &[&str] = &[
    "Jovanović", "Petrović", "Nikolić", "Kovačević", "Marković", "Horvat", "Babić", "Hodžić",
    "Begić", "Novak",
];

#[rustfmt::skip]
pub(super) const ROMANCE_FEMALE: &[&str] = &[
    "María", "Lucía", "Inês", "Chloé", "Zoé", "Renée", "Léa", "Camille", "Beatriz",
];

#[rustfmt::skip]
pub(super) const ROMANCE_MALE: &[&str] = &[
    "José", "Andrés", "João", "René", "Noé", "Jérôme", "Raphaël", "Héctor", "Sébastien",
];

#[rustfmt::skip]
pub(super) const ROMANCE_LAST: &[&str] = &[
    "García", "Fernández", "Rodríguez", "Silva", "Santos", "Gonçalves", "Pereira", "Lefèvre",
    "Dubois", "dos Santos", "Martínez",
];

#[rustfmt::skip]
pub(super) const ENGLISH_FEMALE: &[&str] = &[
    "Emily", "Olivia", "Chloe", "Siobhan", "Aoife", "Grace",
];

#[rustfmt::skip]
pub(super) const ENGLISH_MALE: &[&str] = &[
    "James", "Liam", "Connor", "Seán", "Patrick", "Oliver",
];

#[rustfmt::skip]
pub(super) const ENGLISH_LAST: &[&str] = &[
    "O'Connor", "O'Brien", "Murphy", "Smith", "Walsh", "McCarthy", "Kelly", "Taylor",
];

#[rustfmt::skip]
pub(super) const VIETNAMESE_FEMALE: &[&str] = &[
    "Linh", "Thu", "Mai", "Trang", "Lan",
];

#[rustfmt::skip]
pub(super) const VIETNAMESE_MALE: &[&str] = &[
    "Minh", "Duc", "Tuan", "Anh", "Quang",
];

#[rustfmt::skip]
pub(super) const VIETNAMESE_LAST: &[&str] = &[
    "Nguyen", "Tran", "Le", "Pham", "Hoang", "Vu",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sizeable_and_clean() {
        let firsts = ORIGINS
            .iter()
            .flat_map(|o| [o.young_female, o.young_male, o.female, o.male]);
        let firsts: Vec<&str> = firsts
            .chain([HYPHENATED_FEMALE, HYPHENATED_MALE])
            .flatten()
            .copied()
            .collect();
        let lasts: Vec<&str> = ORIGINS
            .iter()
            .map(|o| o.last)
            .chain([DOUBLE_LAST, PARTICLE_LAST])
            .flatten()
            .copied()
            .collect();
        let unique = |v: &[&str]| v.iter().collect::<std::collections::HashSet<_>>().len();
        assert!(
            unique(&firsts) >= 150 && unique(&lasts) >= 200,
            "{} {}",
            unique(&firsts),
            unique(&lasts)
        );
        for name in firsts.iter().chain(&lasts) {
            assert!(
                !name.is_empty() && name.trim() == *name && !name.contains([',', '"', ';']),
                "{name:?}"
            );
        }
        assert!(ORIGINS.iter().all(|o| o.weight > 0) && SCHOOL_KINDS.iter().all(|k| k.weight > 0));
        for (id, display) in PLACES {
            assert!(
                id.bytes().all(|c| c.is_ascii_lowercase() || c == b'-') && !display.is_empty(),
                "{id}"
            );
        }
    }

    #[test]
    fn names_have_realistic_shares_and_edge_cases() {
        let mut rng = rand::SeedableRng::seed_from_u64(1);
        let names: Vec<_> = (0..20_000).map(|i| person_name(&mut rng, i % 8 != 0)).collect();
        let share = |f: &dyn Fn(&str, &str) -> bool| {
            names.iter().filter(|(first, last)| f(first, last)).count() as f64 / 20_000.0
        };
        let has = |s: &str, chars: &str| s.chars().any(|c| chars.contains(c));
        assert!((0.01..0.05).contains(&share(&|first, _| first.contains('-'))));
        assert!((0.01..0.05).contains(&share(&|_, last| last.contains('-'))));
        assert!((0.005..0.04).contains(&share(&|_, last| last.contains(' '))));
        assert!((0.15..0.5).contains(&share(&|_, last| has(last, "äöüÄÖÜß"))));
        assert!((0.02..0.15).contains(&share(&|_, last| has(last, "ıİşŞçÇğĞ"))));
        assert!((0.5..0.85).contains(&share(&|first, last| first.is_ascii() && last.is_ascii())));
        assert!(share(&|_, last| last.contains('\'')) > 0.0);
        assert!(share(&|first, _| has(first, "éèêñçã")) > 0.0);
    }
}

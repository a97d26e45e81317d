//! The console's notion of now: the system clock, or a fixed instant so
//! snapshot tests render the same "days left" and ages every day.

use chrono::{DateTime, Local, NaiveDate, Utc};

#[derive(Clone, Copy, Debug)]
pub enum Clock {
    System,
    Fixed(DateTime<Utc>),
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(t) => *t,
        }
    }

    /// Today as purge dates count it (local time; UTC for a fixed clock).
    pub fn today(&self) -> NaiveDate {
        match self {
            Clock::System => Local::now().date_naive(),
            Clock::Fixed(t) => t.date_naive(),
        }
    }
}

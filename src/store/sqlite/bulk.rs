//! Multi-row INSERTs for the bulk paths of a batch (new users and their
//! school and group rows, journal entries): one statement per chunk instead
//! of one per row, which is most of the cost of a large import.

use rusqlite::types::Value;
use rusqlite::{ToSql, Transaction, params_from_iter};

/// Rows per statement (SQLite allows 32766 parameters per statement).
const CHUNK: usize = 200;

/// `INSERT INTO <head> VALUES (?, …), …` for `rows` rows of `cols` values.
fn sql(head: &str, cols: usize, rows: usize) -> String {
    let one = format!("({})", vec!["?"; cols].join(", "));
    format!("INSERT INTO {head} VALUES {}", vec![one; rows].join(", "))
}

/// Inserts rows of `cols` values each, `CHUNK` rows per statement. `head`
/// is the table and column list, e.g. `journal (object, schools, at)`.
pub fn insert(tx: &Transaction<'_>, head: &str, cols: usize, rows: &[Vec<Value>]) -> rusqlite::Result<()> {
    for chunk in rows.chunks(CHUNK) {
        let mut stmt = tx.prepare_cached(&sql(head, cols, chunk.len()))?;
        stmt.execute(params_from_iter(chunk.iter().flatten()))?;
    }
    Ok(())
}

/// [`insert`] for values borrowed in place: `values` holds `cols` values
/// per row, row after row.
pub fn insert_refs(tx: &Transaction<'_>, head: &str, cols: usize, values: &[&dyn ToSql]) -> rusqlite::Result<()> {
    for chunk in values.chunks(CHUNK * cols) {
        let mut stmt = tx.prepare_cached(&sql(head, cols, chunk.len() / cols))?;
        stmt.execute(chunk)?;
    }
    Ok(())
}

pub fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_in_chunks() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a INTEGER, b TEXT)").unwrap();
        let rows: Vec<Vec<Value>> = (0..450).map(|i| vec![Value::Integer(i), text("x")]).collect();
        let tx = conn.transaction().unwrap();
        insert(&tx, "t (a, b)", 2, &rows).unwrap();
        tx.commit().unwrap();
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 450);
    }
}

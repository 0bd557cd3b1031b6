//! The SQL connection underneath the store, for either backend: SQLite
//! (rusqlite) or PostgreSQL (the `postgres` crate).
//!
//! The store's modules write one SQL text for both. They bind and read
//! values of SQLite's five kinds ([`ValueRef`]): NULL, a 64-bit integer, a
//! double, text and bytes. On PostgreSQL, a value is converted to the type
//! the server inferred for its parameter (an integer into `INT4`, `BOOL` or
//! `TEXT`, say) and a column is read back into one of the five kinds, so
//! that the code above does not care which database answers. The API
//! follows rusqlite's (`prepare_cached`, `query_row`, `query_map`,
//! `params!`, `optional()`), which the store was written against first.
//!
//! PostgreSQL statements are written with SQLite's `?1` placeholders and
//! rewritten to `$1` once, when first prepared on a connection; SQLite's
//! planner hints (`INDEXED BY`) are dropped there too. SQL that differs
//! beyond that asks [`Db::is_postgres`] and says both forms.

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::types::{IsNull, Type};

/// A failed SQL call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Sqlite(rusqlite::Error),
    /// PostgreSQL's own message (the driver's only says "db error").
    #[error("{}", pg_message(.0))]
    Postgres(postgres::Error),
    /// `query_row` found no row: turned into `None` by [`OptionalExtension`].
    #[error("the query returned no row")]
    NoRow,
    #[error("column {column}: {message}")]
    Conversion { column: usize, message: String },
}

/// PostgreSQL's own words (its message, detail and hint), which the
/// driver's `Display` leaves out ("db error").
fn pg_message(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut text = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; {hint}"));
            }
            text
        }
        None => err.to_string(),
    }
}

impl From<postgres::Error> for Error {
    fn from(err: postgres::Error) -> Error {
        Error::Postgres(err)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Error {
        match err {
            rusqlite::Error::QueryReturnedNoRows => Error::NoRow,
            other => Error::Sqlite(other),
        }
    }
}

impl Error {
    /// A column's value that does not fit what the code reads it as.
    pub fn conversion(column: usize, message: impl std::fmt::Display) -> Error {
        Error::Conversion {
            column,
            message: message.to_string(),
        }
    }

    /// Whether the database refused a write for a unique key it already
    /// holds.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Error::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            Error::Postgres(e) => e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `query_row(…).optional()`: no row is `None`, not an error.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(Error::NoRow) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// A value as both backends bind and return it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl<'a> ValueRef<'a> {
    /// The text, or an error for any other kind.
    pub fn as_str(&self) -> Result<&'a str> {
        match *self {
            ValueRef::Text(text) => Ok(text),
            other => Err(Error::conversion(0, format!("{other:?} is not text"))),
        }
    }
}

/// A Rust value that can be bound to a parameter.
pub trait ToValue {
    fn to_value(&self) -> ValueRef<'_>;
}

/// A Rust value that a column can be read as.
pub trait FromValue: Sized {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String>;
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> ValueRef<'_> {
                ValueRef::Integer(*self as i64)
            }
        }
        impl FromValue for $t {
            fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
                match value {
                    ValueRef::Integer(n) => <$t>::try_from(n)
                        .map_err(|_| format!("{n} does not fit {}", stringify!($t))),
                    other => Err(format!("{other:?} is not an integer")),
                }
            }
        }
    )*};
}
integers!(i64, i32, i16, u32, u16, u8, usize);

impl ToValue for u64 {
    fn to_value(&self) -> ValueRef<'_> {
        // Past i64::MAX no column of the store goes; wrap as SQLite does.
        ValueRef::Integer(*self as i64)
    }
}

impl FromValue for u64 {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Integer(n) => u64::try_from(n).map_err(|_| format!("{n} is negative")),
            other => Err(format!("{other:?} is not an integer")),
        }
    }
}

impl ToValue for bool {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Integer(i64::from(*self))
    }
}

impl FromValue for bool {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Integer(n) => Ok(n != 0),
            other => Err(format!("{other:?} is not a boolean")),
        }
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Real(*self)
    }
}

impl FromValue for f64 {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Real(x) => Ok(x),
            ValueRef::Integer(n) => Ok(n as f64),
            other => Err(format!("{other:?} is not a number")),
        }
    }
}

impl ToValue for str {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl ToValue for std::borrow::Cow<'_, str> {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl ToValue for String {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl FromValue for String {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Text(text) => Ok(text.to_owned()),
            other => Err(format!("{other:?} is not text")),
        }
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl<const N: usize> ToValue for [u8; N] {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Blob(bytes) => Ok(bytes.to_vec()),
            other => Err(format!("{other:?} is not bytes")),
        }
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> ValueRef<'_> {
        (**self).to_value()
    }
}

impl<T: ToValue + ?Sized> ToValue for Box<T> {
    fn to_value(&self) -> ValueRef<'_> {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> ValueRef<'_> {
        match self {
            Some(value) => value.to_value(),
            None => ValueRef::Null,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl ToValue for ValueRef<'_> {
    fn to_value(&self) -> ValueRef<'_> {
        *self
    }
}

/// An owned value of any kind, for code that reads columns it does not know
/// in advance (the store copy).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl ToValue for Value {
    fn to_value(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Integer(n) => ValueRef::Integer(*n),
            Value::Real(x) => ValueRef::Real(*x),
            Value::Text(text) => ValueRef::Text(text),
            Value::Blob(bytes) => ValueRef::Blob(bytes),
        }
    }
}

impl FromValue for Value {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        Ok(match value {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(n) => Value::Integer(n),
            ValueRef::Real(x) => Value::Real(x),
            ValueRef::Text(text) => Value::Text(text.to_owned()),
            ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
        })
    }
}

/// A statement's parameters: `params![a, b]`, an array of one type, `()`
/// for none, or [`params_from_iter`].
pub trait Params {
    fn with_values<R>(self, f: impl FnOnce(&[&dyn ToValue]) -> R) -> R;
}

impl Params for () {
    fn with_values<R>(self, f: impl FnOnce(&[&dyn ToValue]) -> R) -> R {
        f(&[])
    }
}

impl Params for &[&dyn ToValue] {
    fn with_values<R>(self, f: impl FnOnce(&[&dyn ToValue]) -> R) -> R {
        f(self)
    }
}

impl<T: ToValue, const N: usize> Params for [T; N] {
    fn with_values<R>(self, f: impl FnOnce(&[&dyn ToValue]) -> R) -> R {
        let refs: [&dyn ToValue; N] = std::array::from_fn(|i| &self[i] as &dyn ToValue);
        f(&refs)
    }
}

/// Parameters from an iterator, in order.
pub struct ParamsFromIter<I>(I);

pub fn params_from_iter<I: IntoIterator>(iter: I) -> ParamsFromIter<I>
where
    I::Item: ToValue,
{
    ParamsFromIter(iter)
}

impl<I: IntoIterator> Params for ParamsFromIter<I>
where
    I::Item: ToValue,
{
    fn with_values<R>(self, f: impl FnOnce(&[&dyn ToValue]) -> R) -> R {
        let items: Vec<I::Item> = self.0.into_iter().collect();
        let refs: Vec<&dyn ToValue> = items.iter().map(|v| v as &dyn ToValue).collect();
        f(&refs)
    }
}

/// `params![a, b, c]`: parameters of different types, in order.
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::store::sql::ToValue]
    };
    ($($param:expr),+ $(,)?) => {
        &[$(&$param as &dyn $crate::store::sql::ToValue),+] as &[&dyn $crate::store::sql::ToValue]
    };
}
pub(crate) use params;

/// Binds one value for rusqlite.
struct SqliteBind<'a>(&'a dyn ToValue);

impl rusqlite::ToSql for SqliteBind<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::ValueRef as V;
        Ok(rusqlite::types::ToSqlOutput::Borrowed(
            match self.0.to_value() {
                ValueRef::Null => V::Null,
                ValueRef::Integer(n) => V::Integer(n),
                ValueRef::Real(x) => V::Real(x),
                ValueRef::Text(text) => V::Text(text.as_bytes()),
                ValueRef::Blob(bytes) => V::Blob(bytes),
            },
        ))
    }
}

fn sqlite_params<'a>(
    values: &'a [&'a dyn ToValue],
) -> rusqlite::ParamsFromIter<impl Iterator<Item = SqliteBind<'a>>> {
    rusqlite::params_from_iter(values.iter().map(|v| SqliteBind(*v)))
}

/// Binds one value for PostgreSQL, as the type the server expects there.
#[derive(Debug)]
struct PgBind<'a>(ValueRef<'a>);

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl postgres::types::ToSql for PgBind<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match self.0 {
            ValueRef::Null => Ok(IsNull::Yes),
            ValueRef::Integer(n) => match *ty {
                Type::INT8 => n.to_sql(ty, out),
                Type::INT4 => i32::try_from(n)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(n)?.to_sql(ty, out),
                Type::BOOL => (n != 0).to_sql(ty, out),
                Type::FLOAT8 => (n as f64).to_sql(ty, out),
                Type::FLOAT4 => (n as f32).to_sql(ty, out),
                _ if is_text(ty) => n.to_string().as_str().to_sql(ty, out),
                _ => Err(format!("an integer cannot be bound as {ty}").into()),
            },
            ValueRef::Real(x) => match *ty {
                Type::FLOAT8 => x.to_sql(ty, out),
                Type::FLOAT4 => (x as f32).to_sql(ty, out),
                _ if is_text(ty) => x.to_string().as_str().to_sql(ty, out),
                _ => Err(format!("a number cannot be bound as {ty}").into()),
            },
            ValueRef::Text(text) => match *ty {
                Type::INT8 => text.parse::<i64>()?.to_sql(ty, out),
                Type::INT4 => text.parse::<i32>()?.to_sql(ty, out),
                Type::BYTEA => text.as_bytes().to_sql(ty, out),
                Type::JSONB => {
                    // JSONB's binary form: a version byte, then the text.
                    out.extend_from_slice(&[1]);
                    out.extend_from_slice(text.as_bytes());
                    Ok(IsNull::No)
                }
                Type::JSON => {
                    out.extend_from_slice(text.as_bytes());
                    Ok(IsNull::No)
                }
                _ => text.to_sql(ty, out),
            },
            ValueRef::Blob(bytes) => bytes.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql`, where the value's kind is known.
        true
    }

    postgres::types::to_sql_checked!();
}

fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

/// Raw JSON text of a `json` or `jsonb` column.
struct PgJson<'a>(&'a str);

impl<'a> postgres::types::FromSql<'a> for PgJson<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let text = match *ty {
            Type::JSONB => raw.strip_prefix(&[1]).ok_or("unknown jsonb version")?,
            _ => raw,
        };
        Ok(PgJson(std::str::from_utf8(text)?))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSON | Type::JSONB)
    }
}

/// One row of a result.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Pg(&'a postgres::Row),
}

impl<'a> Row<'a> {
    /// Column `index`, read as `T`.
    pub fn get<I: ColumnIndex, T: FromValue>(&self, index: I) -> Result<T> {
        let index = index.index();
        T::from_value(self.get_ref(index)?).map_err(|message| Error::Conversion {
            column: index,
            message,
        })
    }

    /// Column `index` as it is stored.
    pub fn get_ref(&self, index: usize) -> Result<ValueRef<'a>> {
        match self {
            Row::Sqlite(row) => {
                use rusqlite::types::ValueRef as V;
                Ok(match row.get_ref(index)? {
                    V::Null => ValueRef::Null,
                    V::Integer(n) => ValueRef::Integer(n),
                    V::Real(x) => ValueRef::Real(x),
                    V::Text(bytes) => ValueRef::Text(
                        std::str::from_utf8(bytes).map_err(|e| Error::conversion(index, e))?,
                    ),
                    V::Blob(bytes) => ValueRef::Blob(bytes),
                })
            }
            Row::Pg(row) => pg_value(row, index),
        }
    }
}

fn pg_value<'a>(row: &'a postgres::Row, index: usize) -> Result<ValueRef<'a>> {
    let column = row
        .columns()
        .get(index)
        .ok_or_else(|| Error::conversion(index, "no such column"))?;
    let ty = column.type_().clone();
    let value = match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(index)?.map(ValueRef::Integer),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(index)?
            .map(|n| ValueRef::Integer(n.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(index)?
            .map(|n| ValueRef::Integer(n.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(index)?
            .map(|b| ValueRef::Integer(b.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(index)?.map(ValueRef::Real),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(index)?
            .map(|x| ValueRef::Real(x.into())),
        Type::BYTEA => row.try_get::<_, Option<&[u8]>>(index)?.map(ValueRef::Blob),
        Type::JSON | Type::JSONB => row
            .try_get::<_, Option<PgJson<'a>>>(index)?
            .map(|j| ValueRef::Text(j.0)),
        ref ty if is_text(ty) => row.try_get::<_, Option<&str>>(index)?.map(ValueRef::Text),
        other => {
            return Err(Error::conversion(
                index,
                format!(
                    "column {:?} has type {other}, which the store does not read (cast it)",
                    column.name()
                ),
            ));
        }
    };
    Ok(value.unwrap_or(ValueRef::Null))
}

/// What a column is named by: its position.
pub trait ColumnIndex {
    fn index(self) -> usize;
}

impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// A database connection of either backend.
pub enum Db {
    Sqlite(rusqlite::Connection),
    Pg(Box<PgConn>),
}

/// A PostgreSQL connection with the statements prepared on it.
pub struct PgConn {
    client: RefCell<postgres::Client>,
    prepared: RefCell<HashMap<String, postgres::Statement>>,
}

/// How many statements a PostgreSQL connection keeps prepared before it
/// starts afresh (the report's filters make new texts).
const PG_PREPARED_MAX: usize = 512;

impl PgConn {
    pub fn new(client: postgres::Client) -> PgConn {
        PgConn {
            client: RefCell::new(client),
            prepared: RefCell::new(HashMap::new()),
        }
    }

    fn statement(&self, sql: &str) -> Result<postgres::Statement> {
        if let Some(statement) = self.prepared.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.borrow_mut().prepare(&postgres_sql(sql))?;
        let mut prepared = self.prepared.borrow_mut();
        if prepared.len() >= PG_PREPARED_MAX {
            prepared.clear();
        }
        prepared.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn run<R>(
        &self,
        statement: &postgres::Statement,
        values: &[&dyn ToValue],
        f: impl FnOnce(
            &mut postgres::Client,
            &postgres::Statement,
            &[&(dyn postgres::types::ToSql + Sync)],
        ) -> std::result::Result<R, postgres::Error>,
    ) -> Result<R> {
        let binds: Vec<PgBind<'_>> = values.iter().map(|v| PgBind(v.to_value())).collect();
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = binds
            .iter()
            .map(|b| b as &(dyn postgres::types::ToSql + Sync))
            .collect();
        let mut client = self.client.borrow_mut();
        Ok(f(&mut client, statement, &refs)?)
    }

    /// Runs statements without parameters, one after the other.
    pub fn batch(&self, sql: &str) -> Result<()> {
        Ok(self.client.borrow_mut().batch_execute(sql)?)
    }
}

/// A statement in SQLite's dialect, rewritten for PostgreSQL. The store's
/// SQL is written once, for SQLite; what has one obvious PostgreSQL form is
/// rewritten here rather than spelled twice:
///
/// - placeholders: `?1` (or `?`, counted from 1) becomes `$1`;
/// - `INDEXED BY name` (a SQLite planner hint) is dropped;
/// - `json_extract(x, '$.a.b')` becomes `(x::jsonb -> 'a' ->> 'b')`, the
///   form of the PostgreSQL schema's expression indexes (JSON `true` reads
///   back as the text `'true'` there, where SQLite gives 1);
/// - `x IS y` and `x IS NOT y`, for a `y` that is not `NULL`, `TRUE` or
///   `FALSE`, become `IS NOT DISTINCT FROM` and `IS DISTINCT FROM`;
/// - `LIKE` becomes `ILIKE`: SQLite's `LIKE` ignores ASCII case;
/// - two-argument `MAX(a, b)` and `MIN(a, b)` become `GREATEST` and `LEAST`.
///
/// Quoted text and comments stay as they are. Statements are rewritten
/// once per connection, when first prepared.
pub fn postgres_sql(sql: &str) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next_anonymous = 1;
    let mut at = 0;
    while at < bytes.len() {
        let c = bytes[at];
        match c {
            b'\'' | b'"' => {
                let end = sql[at + 1..]
                    .find(c as char)
                    .map_or(sql.len(), |n| at + 1 + n + 1);
                out.push_str(&sql[at..end]);
                at = end;
            }
            b'-' if sql[at..].starts_with("--") => {
                let end = sql[at..].find('\n').map_or(sql.len(), |n| at + n + 1);
                out.push_str(&sql[at..end]);
                at = end;
            }
            b'?' => {
                let digits = sql[at + 1..].bytes().take_while(u8::is_ascii_digit).count();
                out.push('$');
                if digits == 0 {
                    out.push_str(&next_anonymous.to_string());
                    next_anonymous += 1;
                } else {
                    out.push_str(&sql[at + 1..at + 1 + digits]);
                }
                at += 1 + digits;
            }
            c if is_word_byte(c) && (at == 0 || !is_word_byte(bytes[at - 1])) => {
                let end = at + sql[at..].bytes().take_while(|b| is_word_byte(*b)).count();
                at = rewrite_word(sql, at, end, &mut out);
            }
            _ => {
                // Copy up to the next byte that may start something above
                // (multi-byte characters are copied whole).
                let end = at
                    + 1
                    + sql[at + 1..]
                        .bytes()
                        .take_while(|b| {
                            !matches!(b, b'\'' | b'"' | b'-' | b'?') && !is_word_byte(*b)
                        })
                        .count();
                out.push_str(&sql[at..end]);
                at = end;
            }
        }
    }
    out
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The word after `at` (skipping white space): (its start, its end).
fn next_word(sql: &str, at: usize) -> (usize, usize) {
    let start = at
        + sql[at..]
            .bytes()
            .take_while(u8::is_ascii_whitespace)
            .count();
    let end = start
        + sql[start..]
            .bytes()
            .take_while(|b| is_word_byte(*b))
            .count();
    (start, end)
}

/// Writes the word `sql[start..end]`, rewritten if it starts one of the
/// forms of [`postgres_sql`]; returns where to go on.
fn rewrite_word(sql: &str, start: usize, end: usize, out: &mut String) -> usize {
    let word = &sql[start..end];
    let upper = word.to_ascii_uppercase();
    match upper.as_str() {
        "INDEXED" => {
            let (by_start, by_end) = next_word(sql, end);
            if sql[by_start..by_end].eq_ignore_ascii_case("BY") {
                let (_, name_end) = next_word(sql, by_end);
                return name_end;
            }
        }
        "LIKE" => {
            out.push_str("ILIKE");
            return end;
        }
        "IS" => {
            let (next_start, next_end) = next_word(sql, end);
            let next = sql[next_start..next_end].to_ascii_uppercase();
            let keyword = |w: &str| matches!(w, "NULL" | "TRUE" | "FALSE" | "DISTINCT");
            if next == "NOT" {
                let (after_start, after_end) = next_word(sql, next_end);
                if !keyword(&sql[after_start..after_end].to_ascii_uppercase()) {
                    out.push_str("IS DISTINCT FROM");
                    return next_end;
                }
            } else if !keyword(&next) {
                out.push_str("IS NOT DISTINCT FROM");
                return end;
            }
        }
        "JSON_EXTRACT" => {
            if let Some((rewritten, after)) = json_extract(sql, end) {
                out.push_str(&rewritten);
                return after;
            }
        }
        "MAX" | "MIN" => {
            if let Some(args) = arguments(sql, end)
                && args.len() == 2
            {
                out.push_str(if upper == "MAX" { "GREATEST" } else { "LEAST" });
                return end;
            }
        }
        _ => {}
    }
    out.push_str(word);
    end
}

/// The top-level arguments of the call whose `(` follows `at`.
fn arguments(sql: &str, at: usize) -> Option<Vec<&str>> {
    let open = at
        + sql[at..]
            .bytes()
            .take_while(u8::is_ascii_whitespace)
            .count();
    if sql.as_bytes().get(open) != Some(&b'(') {
        return None;
    }
    let mut depth = 0;
    let mut args = Vec::new();
    let mut arg_start = open + 1;
    let mut quote = None;
    for (i, b) in sql.bytes().enumerate().skip(open) {
        match (quote, b) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(b),
            (None, b'(') => depth += 1,
            (None, b')') => {
                depth -= 1;
                if depth == 0 {
                    args.push(sql[arg_start..i].trim());
                    return Some(args);
                }
            }
            (None, b',') if depth == 1 => {
                args.push(sql[arg_start..i].trim());
                arg_start = i + 1;
            }
            _ => {}
        }
    }
    None
}

/// `json_extract(x, '$.a.b')` (its arguments after `at`) as
/// `(x::jsonb -> 'a' ->> 'b')`, and where the call ends.
fn json_extract(sql: &str, at: usize) -> Option<(String, usize)> {
    let args = arguments(sql, at)?;
    let [value, path] = args.as_slice() else {
        return None;
    };
    let keys = path.strip_prefix("'$.")?.strip_suffix('\'')?;
    let keys: Vec<&str> = keys.split('.').collect();
    if keys
        .iter()
        .any(|k| k.is_empty() || !k.bytes().all(is_word_byte))
    {
        return None;
    }
    let mut expr = format!("({value}::jsonb");
    for (i, key) in keys.iter().enumerate() {
        let arrow = if i + 1 == keys.len() { "->>" } else { "->" };
        expr.push_str(&format!(" {arrow} '{key}'"));
    }
    expr.push(')');
    // The call ends at its closing parenthesis.
    let close = sql[at..].find(path)? + at + path.len();
    let close = close + sql[close..].find(')')? + 1;
    Some((expr, close))
}

impl Db {
    /// Whether this is PostgreSQL, for the few statements whose SQL differs.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Pg(_))
    }

    /// Whether the connection is gone (a PostgreSQL server that restarted
    /// or dropped it); a SQLite file's never is.
    pub fn is_closed(&self) -> bool {
        match self {
            Db::Sqlite(_) => false,
            Db::Pg(conn) => conn.client.borrow().is_closed(),
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, `ATTACH`,
    /// checkpoints); `None` on PostgreSQL.
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Db::Sqlite(conn) => Some(conn),
            Db::Pg(_) => None,
        }
    }

    /// A statement kept prepared for the next use of the same text.
    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'_>> {
        Ok(Stmt(match self {
            Db::Sqlite(conn) => StmtInner::SqliteCached(conn.prepare_cached(sql)?),
            Db::Pg(conn) => StmtInner::Pg(conn, conn.statement(sql)?),
        }))
    }

    /// A statement for one use (on PostgreSQL it is kept all the same).
    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_>> {
        Ok(Stmt(match self {
            Db::Sqlite(conn) => StmtInner::Sqlite(conn.prepare(sql)?),
            Db::Pg(conn) => StmtInner::Pg(conn, conn.statement(sql)?),
        }))
    }

    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        self.prepare(sql)?.execute(params)
    }

    pub fn query_row<T, P: Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.prepare(sql)?.query_row(params, f)
    }

    /// Runs statements without parameters, one after the other.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Db::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Db::Pg(conn) => conn.batch(sql),
        }
    }
}

/// An open transaction on a [`Db`]; dropped without [`Transaction::commit`],
/// it rolls back.
pub enum Transaction<'c> {
    Sqlite(rusqlite::Transaction<'c>),
    Pg(PgTransaction<'c>),
}

pub struct PgTransaction<'c> {
    conn: &'c PgConn,
    open: bool,
}

impl Db {
    /// Begins a transaction. `write` says that it will write what it reads:
    /// SQLite then takes its write lock at once (`BEGIN IMMEDIATE`), so
    /// that a concurrent writer waits instead of working from an older
    /// snapshot. PostgreSQL locks rows as they are written; what must not
    /// be read twice is locked by the statement that reads it.
    pub fn begin(&self, write: bool) -> Result<Transaction<'_>> {
        match self {
            Db::Sqlite(conn) => {
                let behavior = if write {
                    rusqlite::TransactionBehavior::Immediate
                } else {
                    rusqlite::TransactionBehavior::Deferred
                };
                Ok(Transaction::Sqlite(rusqlite::Transaction::new_unchecked(
                    conn, behavior,
                )?))
            }
            Db::Pg(conn) => {
                conn.batch("BEGIN")?;
                Ok(Transaction::Pg(PgTransaction { conn, open: true }))
            }
        }
    }
}

impl Transaction<'_> {
    pub fn commit(self) -> Result<()> {
        match self {
            Transaction::Sqlite(tx) => Ok(tx.commit()?),
            Transaction::Pg(mut tx) => {
                // Failed, COMMIT ends the transaction all the same.
                tx.open = false;
                tx.conn.batch("COMMIT")
            }
        }
    }
}

impl Drop for PgTransaction<'_> {
    fn drop(&mut self) {
        if self.open {
            // A transaction that failed half-way: nothing of it may land.
            if let Err(err) = self.conn.batch("ROLLBACK") {
                tracing::warn!(%err, "could not roll back a PostgreSQL transaction");
            }
        }
    }
}

/// A prepared statement.
pub struct Stmt<'c>(StmtInner<'c>);

enum StmtInner<'c> {
    SqliteCached(rusqlite::CachedStatement<'c>),
    Sqlite(rusqlite::Statement<'c>),
    Pg(&'c PgConn, postgres::Statement),
}

impl<'c> Stmt<'c> {
    fn sqlite(&mut self) -> Option<&mut rusqlite::Statement<'c>> {
        match &mut self.0 {
            StmtInner::SqliteCached(stmt) => Some(stmt),
            StmtInner::Sqlite(stmt) => Some(stmt),
            StmtInner::Pg(..) => None,
        }
    }

    /// The names of the columns it returns.
    pub fn column_names(&self) -> Vec<String> {
        match &self.0 {
            StmtInner::SqliteCached(stmt) => stmt.column_names().map(str::to_owned).collect(),
            StmtInner::Sqlite(stmt) => stmt.column_names().map(str::to_owned).collect(),
            StmtInner::Pg(_, statement) => statement
                .columns()
                .iter()
                .map(|c| c.name().to_owned())
                .collect(),
        }
    }

    /// Runs the statement; returns how many rows it changed.
    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        if let Some(stmt) = self.sqlite() {
            return params.with_values(|values| Ok(stmt.execute(sqlite_params(values))?));
        }
        let StmtInner::Pg(conn, statement) = &self.0 else {
            unreachable!("not SQLite, so PostgreSQL")
        };
        params.with_values(|values| {
            conn.run(statement, values, |client, statement, binds| {
                client.execute(statement, binds)
            })
            .map(|n| n as usize)
        })
    }

    /// The first row, read by `f`; [`Error::NoRow`] if there is none.
    pub fn query_row<T, P: Params>(
        &mut self,
        params: P,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        if let Some(stmt) = self.sqlite() {
            return params.with_values(|values| {
                let mut rows = stmt.query(sqlite_params(values))?;
                match rows.next()? {
                    Some(row) => f(&Row::Sqlite(row)),
                    None => Err(Error::NoRow),
                }
            });
        }
        let StmtInner::Pg(conn, statement) = &self.0 else {
            unreachable!("not SQLite, so PostgreSQL")
        };
        let row = params.with_values(|values| {
            conn.run(statement, values, |client, statement, binds| {
                client.query_opt(statement, binds)
            })
        })?;
        match row {
            Some(row) => f(&Row::Pg(&row)),
            None => Err(Error::NoRow),
        }
    }

    /// Every row, each read by `f`.
    pub fn query_map<T, P: Params, F: FnMut(&Row<'_>) -> Result<T>>(
        &mut self,
        params: P,
        f: F,
    ) -> Result<MappedRows<'_, F>> {
        let rows = self.query(params)?;
        Ok(MappedRows { rows, f })
    }

    /// Every row, for reading one at a time.
    pub fn query<P: Params>(&mut self, params: P) -> Result<Rows<'_>> {
        let (conn, statement) = match &mut self.0 {
            StmtInner::SqliteCached(stmt) => {
                return params
                    .with_values(|values| Ok(Rows::Sqlite(stmt.query(sqlite_params(values))?)));
            }
            StmtInner::Sqlite(stmt) => {
                return params
                    .with_values(|values| Ok(Rows::Sqlite(stmt.query(sqlite_params(values))?)));
            }
            StmtInner::Pg(conn, statement) => (conn, statement),
        };
        let rows = params.with_values(|values| {
            conn.run(statement, values, |client, statement, binds| {
                client.query(statement, binds)
            })
        })?;
        Ok(Rows::Pg {
            rows: rows.into_iter(),
            current: None,
        })
    }
}

/// The rows of a query, read one at a time.
pub enum Rows<'s> {
    Sqlite(rusqlite::Rows<'s>),
    Pg {
        rows: std::vec::IntoIter<postgres::Row>,
        current: Option<postgres::Row>,
    },
}

impl Rows<'_> {
    /// The next row, or `None` after the last.
    #[allow(clippy::should_implement_trait)] // rows borrow from `self`
    pub fn next(&mut self) -> Result<Option<Row<'_>>> {
        match self {
            Rows::Sqlite(rows) => Ok(rows.next()?.map(Row::Sqlite)),
            Rows::Pg { rows, current } => {
                *current = rows.next();
                Ok(current.as_ref().map(Row::Pg))
            }
        }
    }
}

/// The rows of a query, each read by a function.
pub struct MappedRows<'s, F> {
    rows: Rows<'s>,
    f: F,
}

impl<T, F: FnMut(&Row<'_>) -> Result<T>> Iterator for MappedRows<'_, F> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        let f = &mut self.f;
        match self.rows.next() {
            Ok(Some(row)) => Some(f(&row)),
            Ok(None) => None,
            Err(err) => Some(Err(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_postgres_numbered_ones() {
        assert_eq!(
            postgres_sql("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d = $12"
        );
        assert_eq!(
            postgres_sql("UPDATE t SET a = ?, b = ? WHERE c = \"x?\""),
            "UPDATE t SET a = $1, b = $2 WHERE c = \"x?\""
        );
    }

    #[test]
    fn index_hints_are_dropped_for_postgres() {
        assert_eq!(
            postgres_sql("SELECT id FROM cases INDEXED BY cases_due WHERE due_at <= ?1"),
            "SELECT id FROM cases  WHERE due_at <= $1"
        );
        assert_eq!(
            postgres_sql("SELECT id FROM cases c indexed by cases_due\n WHERE x = 1"),
            "SELECT id FROM cases c \n WHERE x = 1"
        );
    }

    #[test]
    fn sqlite_idioms_become_their_postgres_forms() {
        assert_eq!(
            postgres_sql(
                "SELECT json_extract(c.body, '$.assigned_to'), json_extract(body, '$.cleanup.approved_by') FROM cases c"
            ),
            "SELECT (c.body::jsonb ->> 'assigned_to'), (body::jsonb -> 'cleanup' ->> 'approved_by') FROM cases c"
        );
        assert_eq!(
            postgres_sql("WHERE a IS ?3 AND b IS NOT 'x' AND c IS NULL AND d IS NOT NULL"),
            "WHERE a IS NOT DISTINCT FROM $3 AND b IS DISTINCT FROM 'x' AND c IS NULL AND d IS NOT NULL"
        );
        assert_eq!(
            postgres_sql("SELECT MAX(a, ?1), max(seq), MIN(f(x, y), 2) FROM t WHERE n LIKE ?2"),
            "SELECT GREATEST(a, $1), max(seq), LEAST(f(x, y), 2) FROM t WHERE n ILIKE $2"
        );
        // Names that merely contain the words stay.
        assert_eq!(
            postgres_sql("SELECT is_open, likes, maximum FROM t"),
            "SELECT is_open, likes, maximum FROM t"
        );
    }

    #[test]
    fn comments_are_kept_as_they_are() {
        assert_eq!(
            postgres_sql("SELECT 1 -- why? because\nFROM t WHERE a = ?1"),
            "SELECT 1 -- why? because\nFROM t WHERE a = $1"
        );
    }

    #[test]
    fn sqlite_binds_and_reads_every_kind() {
        let db = Db::Sqlite(rusqlite::Connection::open_in_memory().expect("memory"));
        db.execute_batch("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT)")
            .expect("table");
        let blob = vec![0u8, 1, 2];
        db.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)",
            params![7i64, 1.5, "ä", blob, None::<String>],
        )
        .expect("insert");
        let row: (i64, f64, String, Vec<u8>, Option<String>, bool) = db
            .query_row("SELECT i, r, s, b, n, i FROM t", (), |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .expect("row");
        assert_eq!(row, (7, 1.5, "ä".to_owned(), blob, None, true));
        let none = db
            .query_row("SELECT i FROM t WHERE i = ?1", [8], |r| r.get::<_, i64>(0))
            .optional()
            .expect("runs");
        assert_eq!(none, None);
        let err = db
            .query_row("SELECT s FROM t", (), |r| r.get::<_, i64>(0))
            .expect_err("text is no integer");
        assert!(err.to_string().contains("column 0"), "{err}");
    }
}

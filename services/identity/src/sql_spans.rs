//! Spans of the database work: one per transaction and one per SQL
//! statement, named by the statement's kind only, never its text or bound
//! values, which hold personal data.

use std::collections::VecDeque;

use diesel::connection::{Instrumentation, InstrumentationEvent};
use tracing::field::Empty;

/// diesel's hooks on one pooled connection, turned into spans: a
/// `db_transaction` span from BEGIN to COMMIT or ROLLBACK, and a `sql` span
/// per statement, inside the transaction's span when one is open, else in
/// the span of the call that runs it.
#[derive(Default)]
pub(crate) struct SqlSpans {
    transaction: Option<tracing::Span>,
    /// Statements started and not yet finished, oldest first (a pipelined
    /// connection may have several in flight).
    statements: VecDeque<tracing::Span>,
    /// COMMIT or ROLLBACK was announced: the transaction's span closes once
    /// that statement finished.
    transaction_ending: bool,
}

impl Instrumentation for SqlSpans {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                let kind = statement_kind(&leading_text(query));
                let parent = self
                    .transaction
                    .as_ref()
                    .map_or_else(tracing::Span::current, Clone::clone);
                let span = tracing::info_span!(
                    parent: &parent,
                    "sql",
                    otel.name = kind,
                    otel.kind = "client",
                    db.system = "postgresql",
                    db.operation.name = kind,
                    error = Empty,
                );
                self.statements.push_back(span);
            }
            InstrumentationEvent::FinishQuery { error, .. } => {
                if let Some(span) = self.statements.pop_front()
                    && error.is_some()
                {
                    span.record("error", true);
                }
                // The COMMIT or ROLLBACK itself ran: the transaction is over.
                if self.transaction_ending && self.statements.is_empty() {
                    self.transaction = None;
                    self.transaction_ending = false;
                }
            }
            InstrumentationEvent::BeginTransaction { depth, .. } if depth.get() == 1 => {
                self.transaction = Some(tracing::info_span!(
                    "db_transaction",
                    otel.kind = "internal",
                    db.system = "postgresql",
                    outcome = Empty,
                ));
                self.transaction_ending = false;
            }
            // diesel announces the end before it sends COMMIT or ROLLBACK,
            // which still belongs to the transaction.
            InstrumentationEvent::CommitTransaction { depth, .. } if depth.get() == 1 => {
                self.end_transaction("commit");
            }
            InstrumentationEvent::RollbackTransaction { depth, .. } if depth.get() == 1 => {
                self.end_transaction("rollback");
            }
            _ => {}
        }
    }
}

impl SqlSpans {
    fn end_transaction(&mut self, outcome: &'static str) {
        if let Some(span) = &self.transaction {
            span.record("outcome", outcome);
            self.transaction_ending = true;
        }
    }
}

/// The first few characters of a statement's text. diesel formats the text
/// followed by its bound values; the writer refuses everything past the
/// first few characters, so the values are never formatted at all.
fn leading_text(query: &dyn std::fmt::Display) -> String {
    struct Leading(String);
    impl std::fmt::Write for Leading {
        fn write_str(&mut self, text: &str) -> std::fmt::Result {
            let room = LEADING_CHARS.saturating_sub(self.0.len());
            let end = (0..=room.min(text.len()))
                .rev()
                .find(|&end| text.is_char_boundary(end))
                .unwrap_or(0);
            self.0.push_str(&text[..end]);
            if end < text.len() {
                Err(std::fmt::Error)
            } else {
                Ok(())
            }
        }
    }
    let mut leading = Leading(String::with_capacity(LEADING_CHARS));
    let _ = std::fmt::write(&mut leading, format_args!("{query}"));
    leading.0
}

/// Enough of a statement to read its first keyword.
const LEADING_CHARS: usize = 24;

/// The statement's first keyword (SELECT, INSERT, …): the kind of work,
/// without a table name, literal or bound value.
fn statement_kind(sql: &str) -> &'static str {
    let first = sql
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default();
    const KINDS: [&str; 12] = [
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "WITH",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "SET",
        "SAVEPOINT",
        "RELEASE",
        "LOCK",
    ];
    KINDS
        .into_iter()
        .find(|kind| kind.eq_ignore_ascii_case(first))
        .unwrap_or("OTHER")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_kind_is_the_first_keyword_only() {
        assert_eq!(
            statement_kind("SELECT \"users\".\"id\" FROM users WHERE x = $1 -- binds: [\"a\"]"),
            "SELECT"
        );
        assert_eq!(statement_kind("  insert into t values (1)"), "INSERT");
        assert_eq!(statement_kind("(SELECT 1) UNION (SELECT 2)"), "SELECT");
        assert_eq!(
            statement_kind("WITH a AS (SELECT 1) SELECT * FROM a"),
            "WITH"
        );
        assert_eq!(statement_kind("VACUUM users"), "OTHER");
        assert_eq!(statement_kind(""), "OTHER");
    }

    #[test]
    fn leading_text_stops_before_the_values() {
        let text = leading_text(&"SELECT id FROM users WHERE user_name = $1 -- binds: [\"ann\"]");
        assert_eq!(text, "SELECT id FROM users WHE");
        assert_eq!(leading_text(&"BEGIN"), "BEGIN");
    }
}

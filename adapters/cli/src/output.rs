//! Rendering shared by every command: the `--output` choice, timestamps, text
//! tables and JSON documents.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::error::CliError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human-readable lines and tables.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// RFC 3339 in UTC with second precision, the same in text and JSON output.
pub fn timestamp(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    let ts = ts?;
    let nanos = u32::try_from(ts.nanos).ok()?;
    DateTime::<Utc>::from_timestamp(ts.seconds, nanos)
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Prints `value` as one pretty-printed JSON document.
pub fn print_json<T: Serialize>(value: &T) -> Result<(), CliError> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Lays rows out in left-aligned columns separated by two spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    std::iter::once(&header)
        .chain(rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Aligned `label: value` lines for a single resource.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(label, _)| label.chars().count() + 1)
        .max()
        .unwrap_or(0);
    pairs
        .iter()
        .map(|(label, value)| format!("{:<width$} {value}", format!("{label}:")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_seconds() {
        let ts = prost_types::Timestamp {
            seconds: 1_795_420_800,
            nanos: 123_000_000,
        };
        assert_eq!(
            timestamp(Some(&ts)).as_deref(),
            Some("2026-11-23T08:00:00Z")
        );
        assert_eq!(timestamp(None), None);
    }

    #[test]
    fn table_aligns_columns_and_trims_trailing_space() {
        let rendered = table(
            &["SLUG", "NAME"],
            &[
                vec!["acme".into(), "Acme Corp".into()],
                vec!["a-much-longer-slug".into(), String::new()],
            ],
        );
        assert_eq!(
            rendered,
            "SLUG                NAME\nacme                Acme Corp\na-much-longer-slug"
        );
    }

    #[test]
    fn fields_align_values() {
        let rendered = fields(&[("id", "1".into()), ("created", "now".into())]);
        assert_eq!(rendered, "id:      1\ncreated: now");
    }
}

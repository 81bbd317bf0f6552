//! Log output on stderr: human lines (the default) or one JSON object per
//! line (`--log-format json`, or `MAILSCRIBE_LOG_FORMAT=json`) with the keys
//! `ts`, `level`, `msg` and `target`, then the fields of the enclosing spans
//! (`run_id`, `mailbox`) and of the event (`uid`, `message_key`, ...).
//!
//! Nothing here filters content: the code logs no secret, no body, and no
//! e-mail address or personal name at info level or above.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// Collects fields as JSON values: numbers and booleans stay typed.
#[derive(Default)]
struct JsonVisitor(Map<String, Value>);

impl Visit for JsonVisitor {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

/// Span fields kept as a JSON object text in the span's extensions.
pub(crate) struct JsonFields;

impl<'writer> FormatFields<'writer> for JsonFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = JsonVisitor::default();
        fields.record(&mut visitor);
        write!(writer, "{}", Value::Object(visitor.0))
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut visitor = JsonVisitor::default();
        if let Ok(Value::Object(existing)) = serde_json::from_str::<Value>(&current.fields) {
            visitor.0 = existing;
        }
        fields.record(&mut visitor);
        current.fields = Value::Object(visitor.0).to_string();
        Ok(())
    }
}

/// One JSON object per event.
pub(crate) struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        line.insert(
            "ts".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
        );
        line.insert(
            "level".into(),
            event
                .metadata()
                .level()
                .as_str()
                .to_ascii_lowercase()
                .into(),
        );
        line.insert("msg".into(), Value::from(""));
        line.insert("target".into(), event.metadata().target().into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(span_fields)) =
                        serde_json::from_str::<Value>(&fields.fields)
                {
                    line.extend(span_fields);
                }
            }
        }
        let mut visitor = JsonVisitor::default();
        event.record(&mut visitor);
        for (key, value) in visitor.0 {
            line.insert(
                if key == "message" {
                    "msg".to_owned()
                } else {
                    key
                },
                value,
            );
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn events_become_json_lines_with_span_fields() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(JsonFields)
            .event_format(JsonLines)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("run", run_id = 7i64, mailbox = "eu");
            let _entered = span.enter();
            tracing::info!(uid = 42u32, message_key = "mid:x", "decided \"quoted\"");
            span.record("run_id", 8i64);
            tracing::warn!("after");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["msg"], "decided \"quoted\"");
        assert_eq!(lines[0]["level"], "info");
        assert_eq!(
            (lines[0]["run_id"].as_i64(), lines[0]["mailbox"].as_str()),
            (Some(7), Some("eu"))
        );
        assert_eq!(
            (lines[0]["uid"].as_u64(), lines[0]["message_key"].as_str()),
            (Some(42), Some("mid:x"))
        );
        assert!(lines[0]["ts"].as_str().unwrap().ends_with('Z'));
        assert!(lines[0]["target"].as_str().unwrap().contains("logging"));
        assert_eq!(
            (lines[1]["level"].as_str(), lines[1]["run_id"].as_i64()),
            (Some("warn"), Some(8))
        );
    }
}

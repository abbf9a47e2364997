//! A knowledge base's synonym table, parsed and bounded at the edge. Stored as JSON (in the
//! database and in exports) in the same shape the API speaks.

use super::FieldErrors;
use serde::{Deserialize, Serialize};

/// Bounds that keep a whole table under the 1 MiB request limit and every term matchable: a
/// query is searched for terms of up to `MAX_TERM_CHARS` characters.
pub const MAX_SETS: usize = 500;
pub const MAX_TERMS_PER_SET: usize = 20;
pub const MAX_TERM_CHARS: usize = 24;

/// One set: every term finds the others (`Equivalent`), or a query for `from` also finds `to`,
/// not the other way round (`OneWay`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SynonymSet {
    Equivalent(Vec<String>),
    OneWay { from: String, to: Vec<String> },
}

/// The table: the knowledge base's own sets, and whether the built-in programming terms apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynonymTable {
    pub builtin: bool,
    pub sets: Vec<SynonymSet>,
}

impl Default for SynonymTable {
    fn default() -> Self {
        Self {
            builtin: true,
            sets: Vec::new(),
        }
    }
}

/// A set as JSON has it: `{"terms": [...]}` or `{"from": "...", "to": [...]}`. A field that
/// is present but `null` is `Some(None)`, so it is refused like the schema refuses it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawSynonymSet {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub terms: Option<Option<Vec<String>>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub from: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub to: Option<Option<Vec<String>>>,
}

/// A field that is there, `null` or not.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The table as JSON has it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawSynonymTable {
    #[serde(default)]
    pub builtin: Option<bool>,
    #[serde(default)]
    pub sets: Option<Vec<RawSynonymSet>>,
}

fn term(raw: &str) -> Result<String, String> {
    if raw.chars().count() > MAX_TERM_CHARS {
        return Err(format!("must be at most {MAX_TERM_CHARS} characters"));
    }
    super::check_controls(raw, false)?;
    let t = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.is_empty() {
        return Err("must not be blank".into());
    }
    Ok(t)
}

impl SynonymTable {
    /// Parses a table, naming every bad field at once.
    pub fn parse(raw: &RawSynonymTable) -> Result<Self, FieldErrors> {
        let mut e = FieldErrors::new();
        let raw_sets = raw.sets.as_deref().unwrap_or_default();
        if raw_sets.len() > MAX_SETS {
            e.push("sets", format!("at most {MAX_SETS} sets"));
            return Err(e);
        }
        let mut sets = Vec::with_capacity(raw_sets.len());
        for (i, s) in raw_sets.iter().enumerate() {
            let at = |f: &str| format!("sets[{i}].{f}");
            let terms = |e: &mut FieldErrors, f: &str, list: &[String], min: usize| {
                if list.len() < min || list.len() > MAX_TERMS_PER_SET {
                    e.push(
                        at(f),
                        format!("must hold {min} to {MAX_TERMS_PER_SET} terms"),
                    );
                    return None;
                }
                let mut out = Vec::with_capacity(list.len());
                for (j, t) in list.iter().enumerate() {
                    out.push(e.check(&format!("{}[{j}]", at(f)), term(t))?);
                }
                Some(out)
            };
            match (&s.terms, &s.from, &s.to) {
                (Some(Some(list)), None, None) => {
                    if let Some(t) = terms(&mut e, "terms", list, 2) {
                        sets.push(SynonymSet::Equivalent(t));
                    }
                }
                (None, Some(Some(from)), Some(Some(to))) => {
                    let from = e.check(&at("from"), term(from));
                    let to = terms(&mut e, "to", to, 1);
                    if let (Some(from), Some(to)) = (from, to) {
                        sets.push(SynonymSet::OneWay { from, to });
                    }
                }
                _ => e.push(
                    format!("sets[{i}]"),
                    "give either `terms` (two or more that find each other) or `from` and `to` \
                     (`from` also finds `to`), none of them null",
                ),
            }
        }
        e.finish()?;
        Ok(Self {
            builtin: raw.builtin.unwrap_or(true),
            sets,
        })
    }

    pub fn to_raw(&self) -> RawSynonymTable {
        RawSynonymTable {
            builtin: Some(self.builtin),
            sets: Some(
                self.sets
                    .iter()
                    .map(|s| match s {
                        SynonymSet::Equivalent(t) => RawSynonymSet {
                            terms: Some(Some(t.clone())),
                            ..Default::default()
                        },
                        SynonymSet::OneWay { from, to } => RawSynonymSet {
                            from: Some(Some(from.clone())),
                            to: Some(Some(to.clone())),
                            ..Default::default()
                        },
                    })
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<SynonymTable, FieldErrors> {
        SynonymTable::parse(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn both_kinds_of_set_parse_and_round_trip() {
        let t = parse(serde_json::json!({"builtin": false, "sets": [
            {"terms": ["捐款", " 捐赠 "]},
            {"from": "禁止升级", "to": ["保留", "hold"]}
        ]}))
        .unwrap();
        assert!(!t.builtin);
        assert_eq!(
            t.sets[0],
            SynonymSet::Equivalent(vec!["捐款".into(), "捐赠".into()])
        );
        assert_eq!(SynonymTable::parse(&t.to_raw()).unwrap(), t);
        assert!(parse(serde_json::json!({})).unwrap().builtin);
    }

    #[test]
    fn every_bad_set_is_named() {
        let e = parse(serde_json::json!({"sets": [
            {"terms": ["alone"]},
            {"from": "", "to": ["x"]},
            {"terms": ["a", "b"], "from": "c"},
            {"terms": ["ok", "x".repeat(25)]},
            {"terms": ["ok", "   "]},
            {"terms": ["ok", "b"], "to": null}
        ]}))
        .unwrap_err();
        let fields: Vec<&str> = e.as_slice().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "sets[0].terms",
                "sets[1].from",
                "sets[2]",
                "sets[3].terms[1]",
                "sets[4].terms[1]",
                "sets[5]"
            ]
        );
    }
}

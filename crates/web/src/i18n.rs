//! Localisation (多语言): zh-CN (default) and English message catalogues, compiled into the
//! binary from `i18n/*.toml`. A missing key shows the key itself, and a unit test keeps the two
//! catalogues in step.

use std::{collections::HashMap, sync::OnceLock};

/// A supported language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Simplified Chinese (default).
    #[default]
    ZhCn,
    /// English.
    En,
}

impl Lang {
    /// The BCP 47 tag.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    /// Parses a tag or cookie value.
    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim().to_ascii_lowercase();
        if s.starts_with("zh") {
            Some(Lang::ZhCn)
        } else if s.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// Picks the first supported language of an `Accept-Language` header (by order of quality).
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut tags: Vec<(f32, &str)> = header
            .split(',')
            .map(|part| {
                let mut it = part.split(';');
                let tag = it.next().unwrap_or("").trim();
                let q = it.find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.parse().ok())).unwrap_or(1.0);
                (q, tag)
            })
            .collect();
        tags.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
        tags.into_iter().find_map(|(_, t)| Lang::parse(t))
    }
}

type Catalogue = HashMap<String, String>;

fn load(source: &str) -> Catalogue {
    let value: toml::Table = toml::from_str(source).unwrap_or_default();
    let mut out = HashMap::new();
    flatten("", &toml::Value::Table(value), &mut out);
    out
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut Catalogue) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        toml::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn catalogue(lang: Lang) -> &'static Catalogue {
    static ZH: OnceLock<Catalogue> = OnceLock::new();
    static EN: OnceLock<Catalogue> = OnceLock::new();
    match lang {
        Lang::ZhCn => ZH.get_or_init(|| load(include_str!("../i18n/zh-CN.toml"))),
        Lang::En => EN.get_or_init(|| load(include_str!("../i18n/en.toml"))),
    }
}

/// Translator handed to templates: `{{ tr.t("nav.units") }}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tr {
    /// The language.
    pub lang: Lang,
}

impl Tr {
    /// The message for `key`, or the key itself when missing.
    pub fn t<'a>(&self, key: &'a str) -> &'a str {
        match catalogue(self.lang).get(key) {
            Some(s) => s.as_str(),
            None => key,
        }
    }

    /// The message for `key` with `{0}` replaced.
    pub fn t1(&self, key: &str, arg: &str) -> String {
        self.t(key).replace("{0}", arg)
    }

    /// The BCP 47 tag.
    pub fn tag(&self) -> &'static str {
        self.lang.tag()
    }

    /// Whether the language is English (for the switch link).
    pub fn is_en(&self) -> bool {
        self.lang == Lang::En
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogues_have_the_same_keys() {
        let zh = catalogue(Lang::ZhCn);
        let en = catalogue(Lang::En);
        assert!(zh.len() > 100, "zh catalogue has {} keys", zh.len());
        let mut missing: Vec<_> = zh.keys().filter(|k| !en.contains_key(*k)).collect();
        missing.extend(en.keys().filter(|k| !zh.contains_key(*k)));
        assert!(missing.is_empty(), "keys in one catalogue only: {missing:?}");
    }

    #[test]
    fn accept_language_prefers_quality() {
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9,zh-CN;q=0.8"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("fr;q=1, zh;q=0.5"), Some(Lang::ZhCn));
        assert_eq!(Lang::from_accept_language("fr"), None);
        assert_eq!(Tr { lang: Lang::En }.t("no.such.key"), "no.such.key");
    }
}

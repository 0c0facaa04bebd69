//! Settings from SSM Parameter Store, as the design note's fleet keeps
//! them: every parameter under `/manga-assist/<env>/`, recursively,
//! SecureStrings decrypted, a value that parses as JSON taken as that JSON
//! (`100`, `true`, `["us-east-1"]`, `{...}`), anything else as text, and a
//! StringList as a list. The name below the path is the setting
//! (`/manga-assist/prod/rate_per_second`); deeper names are nested tables
//! (`/manga-assist/prod/catalog/selection` is `catalog.selection`). A name
//! that is not a setting is refused like an unknown key in the file.

use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::ParameterType;

use crate::config::ServiceConfig;

/// One parameter as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// Its full name (`/manga-assist/prod/rate_per_second`).
    pub name: String,
    /// Its value, decrypted.
    pub value: String,
    /// Whether it is a StringList (comma-separated).
    pub list: bool,
    /// Whether it is a SecureString (its value never goes into a message).
    pub secret: bool,
}

/// Settings only the file or the environment may give: where to read the
/// settings from cannot itself be read from there.
const NOT_FROM_SSM: &[&str] = &["ssm_parameters"];

/// The path of an environment's parameters.
pub fn path(environment: &str) -> String {
    format!("/manga-assist/{environment}/")
}

/// Every parameter under `path`, recursively, decrypted.
pub async fn fetch(client: &Client, path: &str) -> Result<Vec<Parameter>, String> {
    let pages = client
        .get_parameters_by_path()
        .path(path)
        .recursive(true)
        .with_decryption(true)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| {
            format!(
                "cannot read SSM parameters under {path}: {}",
                crate::aws_stores::describe(&e)
            )
        })?;
    Ok(pages
        .iter()
        .flat_map(|page| page.parameters())
        .map(|p| Parameter {
            list: p.r#type() == Some(&ParameterType::StringList),
            secret: p.r#type() == Some(&ParameterType::SecureString),
            name: p.name().unwrap_or_default().to_string(),
            value: p.value().unwrap_or_default().to_string(),
        })
        .collect())
}

/// The parameters as a configuration layer; each one checked on its own,
/// so an error names the parameter that caused it.
pub fn layer(path: &str, parameters: &[Parameter]) -> Result<toml::Table, String> {
    let mut table = toml::Table::new();
    for p in parameters {
        let refuse = |why: String| format!("SSM parameter {}: {why}", p.name);
        let relative = p
            .name
            .strip_prefix(path)
            .ok_or_else(|| refuse(format!("not under {path}")))?;
        let segments: Vec<&str> = relative.split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(refuse("empty name segment".into()));
        }
        if NOT_FROM_SSM.contains(&segments[0]) {
            return Err(refuse(format!(
                "{} can be set only in the configuration file or the environment",
                segments[0]
            )));
        }
        let text = toml::Value::String(p.value.clone());
        let value = if p.list {
            toml::Value::Array(
                p.value
                    .split(',')
                    .map(|v| toml::Value::String(v.to_string()))
                    .collect(),
            )
        } else {
            match serde_json::from_str::<serde_json::Value>(&p.value) {
                Ok(json) => toml::Value::try_from(&json)
                    .map_err(|e| refuse(format!("its JSON has no TOML form ({e})")))?,
                Err(_) => text.clone(),
            }
        };
        let top = segments[0].to_string();
        // Checked alone over the defaults, so an unknown name or a value of
        // the wrong kind is reported against this parameter. Text that
        // happens to parse as JSON (a table named `2024`) is taken as text
        // when only the text fits.
        let mut fits = None;
        let mut first_error = String::new();
        for candidate in [value, text] {
            let nested = nest(&segments[1..], candidate);
            let alone = toml::Table::from_iter([(top.clone(), nested.clone())]);
            match alone.try_into::<ServiceConfig>() {
                Ok(_) => {
                    fits = Some(nested);
                    break;
                }
                Err(e) if first_error.is_empty() => first_error = e.message().to_string(),
                Err(_) => {}
            }
        }
        let Some(nested) = fits else {
            return Err(refuse(
                if p.secret && first_error.contains(p.value.trim()) {
                    // The message quotes the value: not for secrets.
                    format!("not a valid value for {top} (a SecureString; its value is not shown)")
                } else {
                    first_error
                },
            ));
        };
        match (table.get_mut(&top), nested) {
            (Some(toml::Value::Table(into)), toml::Value::Table(from)) => deep_merge(into, from),
            (_, nested) => {
                table.insert(top, nested);
            }
        }
    }
    Ok(table)
}

/// `a/b/c = v` is `a = { b = { c = v } }` (here `segments` are `b`, `c`).
fn nest(segments: &[&str], value: toml::Value) -> toml::Value {
    segments.iter().rev().fold(value, |nested, key| {
        toml::Value::Table(toml::Table::from_iter([(key.to_string(), nested)]))
    })
}

fn deep_merge(into: &mut toml::Table, from: toml::Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => deep_merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    fn p(name: &str, value: &str) -> Parameter {
        Parameter {
            name: name.into(),
            value: value.into(),
            list: false,
            secret: false,
        }
    }

    const PATH: &str = "/manga-assist/prod/";

    #[test]
    fn json_values_are_parsed_and_text_is_kept() {
        let t = layer(
            PATH,
            &[
                p("/manga-assist/prod/rate_per_second", "250"),
                p("/manga-assist/prod/allow_quality", "false"),
                p(
                    "/manga-assist/prod/regions",
                    r#"["ap-northeast-1","us-west-2"]"#,
                ),
                p("/manga-assist/prod/redis_url", "rediss://cache:6379"),
            ],
        )
        .unwrap();
        assert_eq!(t["rate_per_second"], toml::Value::Integer(250));
        assert_eq!(t["allow_quality"], toml::Value::Boolean(false));
        assert_eq!(t["regions"].as_array().unwrap().len(), 2);
        assert_eq!(t["redis_url"].as_str(), Some("rediss://cache:6379"));
    }

    #[test]
    fn string_lists_are_lists_and_json_objects_are_tables() {
        let mut list = p(
            "/manga-assist/prod/cors_origins",
            "https://a.example,https://b.example",
        );
        list.list = true;
        let mut catalog = mangaassist_core::models::Catalog::spec_default();
        catalog.selection.auto_fast_max_tokens = 300;
        let json = serde_json::to_string(&catalog).unwrap();
        let t = layer(PATH, &[list, p("/manga-assist/prod/catalog", &json)]).unwrap();
        assert_eq!(t["cors_origins"].as_array().unwrap().len(), 2);
        let back: ServiceConfig = t.try_into().unwrap();
        assert_eq!(back.catalog, catalog);
    }

    #[test]
    fn deeper_names_nest() {
        // catalog/selection is catalog.selection: a whole catalog is needed
        // (as in the file), and the error says so for this parameter.
        let e = layer(
            PATH,
            &[p(
                "/manga-assist/prod/catalog/selection",
                r#"{"fast":"haiku"}"#,
            )],
        )
        .unwrap_err();
        assert!(
            e.starts_with("SSM parameter /manga-assist/prod/catalog/selection:")
                && e.contains("missing field `quality`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_names_and_wrong_kinds_are_refused_by_name() {
        let e = layer(PATH, &[p("/manga-assist/prod/rate_per_secnd", "5")]).unwrap_err();
        assert!(
            e.starts_with("SSM parameter /manga-assist/prod/rate_per_secnd: unknown field"),
            "{e}"
        );
        let e = layer(PATH, &[p("/manga-assist/prod/rate_per_second", "fast")]).unwrap_err();
        assert!(e.contains("/manga-assist/prod/rate_per_second"), "{e}");
        let e = layer(PATH, &[p("/manga-assist/prod/ssm_parameters", "false")]).unwrap_err();
        assert!(e.contains("only in the configuration file"), "{e}");
        let e = layer(PATH, &[p("/manga-assist/prod/regions", "null")]).unwrap_err();
        assert!(e.contains("no TOML form"), "{e}");
        // A secret's value never appears in the message.
        let mut secret = p(
            "/manga-assist/prod/user_token_secrets",
            "hunter2-secret-value",
        );
        secret.secret = true;
        let e = layer(PATH, &[secret]).unwrap_err();
        assert!(
            !e.contains("hunter2") && e.contains("value is not shown"),
            "{e}"
        );
    }

    #[test]
    fn text_that_parses_as_json_stays_text_where_only_text_fits() {
        let t = layer(PATH, &[p("/manga-assist/prod/sessions_table", "2024")]).unwrap();
        assert_eq!(t["sessions_table"].as_str(), Some("2024"));
        let t = layer(PATH, &[p("/manga-assist/prod/rate_per_second", "2024")]).unwrap();
        assert_eq!(t["rate_per_second"], toml::Value::Integer(2024));
    }
}

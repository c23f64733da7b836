//! Merging configuration layers (TOML tables) and turning the result into a checked [`Config`].

use std::path::Path;

use toml::{Table, Value};

use super::{Config, DEFAULT_TOML};

/// Prefix of environment variables that override configuration keys: `KLINE__SERVER__PORT=9000`.
pub const ENV_PREFIX: &str = "KLINE__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin} is not valid TOML: {message}")]
    Syntax { origin: String, message: String },
    #[error("config key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
    #[error("override `{0}` must look like section.key=value")]
    BadOverride(String),
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// A stack of configuration layers, merged in the order they were added.
#[derive(Debug, Clone)]
pub struct ConfigLayers {
    merged: Table,
}

impl Default for ConfigLayers {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigLayers {
    /// Starts from the built-in defaults.
    pub fn new() -> ConfigLayers {
        let merged = parse_table(DEFAULT_TOML, "config/default.toml").expect("default.toml parses");
        ConfigLayers { merged }
    }

    /// Merges a TOML file over what is there.
    pub fn file(mut self, path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        merge(
            &mut self.merged,
            parse_table(&text, &path.display().to_string())?,
        );
        Ok(self)
    }

    /// Merges TOML text (used by tests and by callers that build config in code).
    pub fn toml(mut self, text: &str) -> Result<Self, ConfigError> {
        merge(&mut self.merged, parse_table(text, "inline config")?);
        Ok(self)
    }

    /// Applies `KLINE__SECTION__KEY=value` variables from `vars` (pass `std::env::vars()`), and the
    /// `KLINE_INGEST_TOKEN` shortcut for `ingest.token` and `KLINE_INTERNAL_TOKEN` for `node.internal_token`.
    pub fn env(
        mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        for (name, value) in vars {
            if name == "KLINE_INGEST_TOKEN" {
                self.set(&["ingest", "token"], Value::String(value));
            } else if name == "KLINE_INTERNAL_TOKEN" {
                self.set(&["node", "internal_token"], Value::String(value));
            } else if let Some(path) = name.strip_prefix(ENV_PREFIX) {
                let path = path.to_ascii_lowercase();
                let keys: Vec<&str> = path.split("__").collect();
                if keys.iter().any(|k| k.is_empty()) {
                    return Err(ConfigError::BadOverride(name));
                }
                self.set(&keys, parse_scalar(&value));
            }
        }
        Ok(self)
    }

    /// Applies `section.key=value` overrides (the CLI's `--set`).
    pub fn overrides<'a>(
        mut self,
        items: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, ConfigError> {
        for item in items {
            let (path, value) = item
                .split_once('=')
                .ok_or_else(|| ConfigError::BadOverride(item.to_owned()))?;
            let keys: Vec<&str> = path.trim().split('.').collect();
            if keys.iter().any(|k| k.is_empty()) {
                return Err(ConfigError::BadOverride(item.to_owned()));
            }
            self.set(&keys, parse_scalar(value.trim()));
        }
        Ok(self)
    }

    /// Sets one key, creating tables on the way.
    pub fn set(&mut self, keys: &[&str], value: Value) {
        let (last, parents) = keys.split_last().expect("at least one key");
        let mut table = &mut self.merged;
        for key in parents {
            let entry = table
                .entry((*key).to_owned())
                .or_insert_with(|| Value::Table(Table::new()));
            if !entry.is_table() {
                *entry = Value::Table(Table::new());
            }
            table = entry.as_table_mut().expect("just made a table");
        }
        table.insert((*last).to_owned(), value);
    }

    /// Checks the merged layers and returns the typed config.
    pub fn build(self) -> Result<Config, ConfigError> {
        let config: Config =
            serde_path_to_error::deserialize(Value::Table(self.merged)).map_err(|err| {
                let key = err.path().to_string();
                ConfigError::invalid(key, err.into_inner().to_string())
            })?;
        config.validate()?;
        Ok(config)
    }
}

fn parse_table(text: &str, origin: &str) -> Result<Table, ConfigError> {
    text.parse::<Table>().map_err(|err| ConfigError::Syntax {
        origin: origin.to_owned(),
        message: err.to_string(),
    })
}

/// An override value is TOML when it parses as such (`9000`, `false`, `["a"]`), else a plain string.
fn parse_scalar(text: &str) -> Value {
    format!("v = {text}")
        .parse::<Table>()
        .ok()
        .and_then(|mut table| table.remove("v"))
        .unwrap_or_else(|| Value::String(text.to_owned()))
}

/// Deep-merges `over` into `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(base_table)), Value::Table(over_table)) => {
                merge(base_table, over_table)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CorsOrigins;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_files_in_config_parse() {
        let defaults = ConfigLayers::new().build().unwrap();
        assert!(defaults.source.simulator.enabled);
        assert!(!defaults.ingest.enabled);
        assert_eq!(defaults.kline.intervals.len(), 9);
        assert_eq!(
            defaults.server.cors_allowed_origins,
            CorsOrigins::Keyword("permissive".into())
        );
        // Read at run time: a test binary reused from another checkout must not look in that checkout.
        let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it for tests");
        let production = format!("{manifest_dir}/../config/production.toml");
        let production = ConfigLayers::new()
            .file(Path::new(&production))
            .unwrap()
            .build()
            .unwrap();
        assert!(!production.source.simulator.enabled);
        assert!(production.ingest.enabled);
        assert!(matches!(
            production.server.cors_allowed_origins,
            CorsOrigins::List(_)
        ));
    }

    #[test]
    fn later_layers_win() {
        let config = ConfigLayers::new()
            .toml("[server]\nport = 9000\nhost = \"0.0.0.0\"")
            .unwrap()
            .env(env(&[("KLINE__SERVER__PORT", "9100"), ("UNRELATED", "x")]))
            .unwrap()
            .overrides(["server.port=9200"])
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(config.server.port, 9200);
        assert_eq!(
            config.server.host, "0.0.0.0",
            "file layer kept where nothing overrides it"
        );
        let env_only = ConfigLayers::new()
            .env(env(&[
                ("KLINE__SERVER__PORT", "9100"),
                ("KLINE__SOURCE__SIMULATOR__ENABLED", "false"),
            ]))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(env_only.server.port, 9100);
        assert!(!env_only.source.simulator.enabled);
    }

    #[test]
    fn ingest_token_from_env_turns_the_route_on_only_when_enabled() {
        let vars = env(&[("KLINE_INGEST_TOKEN", "secret")]);
        let off = ConfigLayers::new()
            .env(vars.clone())
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(off.ingest_token(), None);
        let on = ConfigLayers::new()
            .overrides(["ingest.enabled=true"])
            .unwrap()
            .env(vars)
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(on.ingest_token(), Some("secret"));
    }

    #[test]
    fn errors_name_the_key() {
        let unknown = ConfigLayers::new()
            .toml("[server]\nprot = 1")
            .unwrap()
            .build()
            .unwrap_err();
        assert!(unknown.to_string().contains("prot"), "{unknown}");
        let bad_value = ConfigLayers::new()
            .overrides(["server.port=\"high\""])
            .unwrap()
            .build()
            .unwrap_err();
        assert!(bad_value.to_string().contains("server.port"), "{bad_value}");
        let bad_interval = ConfigLayers::new()
            .toml("[kline]\nintervals = [\"m2\"]")
            .unwrap()
            .build()
            .unwrap_err();
        assert!(
            bad_interval.to_string().contains("kline.intervals"),
            "{bad_interval}"
        );
        let range = ConfigLayers::new()
            .overrides(["kline.history_data_limit=5000"])
            .unwrap()
            .build()
            .unwrap_err();
        assert!(
            range.to_string().contains("kline.history_data_limit"),
            "{range}"
        );
        let env_unknown = ConfigLayers::new()
            .env(env(&[("KLINE__SERVER__NOPE", "1")]))
            .unwrap()
            .build()
            .unwrap_err();
        assert!(env_unknown.to_string().contains("nope"), "{env_unknown}");
        let cors = ConfigLayers::new()
            .overrides(["server.cors_allowed_origins=any"])
            .unwrap()
            .build()
            .unwrap_err();
        assert!(
            cors.to_string().contains("server.cors_allowed_origins"),
            "{cors}"
        );
        let syntax = ConfigLayers::new().toml("[server").unwrap_err();
        assert!(matches!(syntax, ConfigError::Syntax { .. }));
        assert!(matches!(
            ConfigLayers::new().overrides(["noequals"]).unwrap_err(),
            ConfigError::BadOverride(_)
        ));
    }
}

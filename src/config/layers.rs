//! Where the settings of `serve` come from: layers merged by figment, lowest first: clap's
//! defaults; the TOML config file (`--config`); secrets from files (`*_FILE`, as Docker and
//! Kubernetes mount them) and the platform's `PORT`; then flags and `TTGW_*` environment
//! variables (clap reads both; a flag wins over its variable). The merged settings are
//! extracted once, with serde, into [`ServeArgs`], so a setting has the same type whichever
//! layer gave it, and an error names the setting and the layer it came from.

use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::{ConfigError, ServeArgs, bad};

/// One layer of settings, keyed by flag name, with the name errors report it by.
struct Layer {
    name: String,
    settings: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.settings.clone()))
    }
}

/// Every layer of `serve`'s settings, merged; `matches` are clap's for the `serve` command.
pub struct Layered {
    figment: Figment,
    config: Option<PathBuf>,
}

impl Layered {
    /// Reads the layers (the config file and `*_FILE` secrets among them).
    pub fn read(command: &Command, matches: &ArgMatches) -> Result<Self, ConfigError> {
        let given = |id: &str| {
            matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        let mut figment = Figment::new().merge(clap_layer(command, matches, "defaults", |s| {
            s == ValueSource::DefaultValue
        }));
        let config = matches.get_one::<PathBuf>("config").cloned();
        if let Some(path) = &config {
            figment = figment.merge(file_layer(path, command)?);
        }
        figment = figment.merge(env_file_layer(&given)?);
        figment = figment.merge(clap_layer(
            command,
            matches,
            "flags and TTGW_* environment variables",
            |s| matches!(s, ValueSource::CommandLine | ValueSource::EnvVariable),
        ));
        Ok(Self { figment, config })
    }

    /// The settings, typed.
    pub fn extract(&self) -> Result<ServeArgs, ConfigError> {
        let mut args: ServeArgs = self.figment.extract_lossy().map_err(typed_error)?;
        args.config = self.config.clone();
        Ok(args)
    }

    /// A setting as text (each element of a list), with the name of the layer that gave it.
    pub fn value(&self, key: &str) -> Option<(Vec<String>, String)> {
        let value = self.figment.find_value(key).ok()?;
        let layer = self
            .figment
            .get_metadata(value.tag())
            .map(|m| m.name.to_string())
            .unwrap_or_default();
        let texts = match &value {
            Value::Array(_, items) => items.iter().filter_map(text).collect(),
            scalar => text(scalar).into_iter().collect(),
        };
        Some((texts, layer))
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(_, s) => Some(s.clone()),
        Value::Bool(_, b) => Some(b.to_string()),
        Value::Char(_, c) => Some(c.to_string()),
        Value::Num(_, n) => n
            .to_u128()
            .map(|u| u.to_string())
            .or_else(|| n.to_i128().map(|i| i.to_string()))
            .or_else(|| n.to_f64().map(|f| f.to_string())),
        _ => None,
    }
}

/// The flags `serve` has: (clap id, long name, whether it takes a list).
fn flags(command: &Command) -> Vec<(String, String, bool)> {
    command
        .get_arguments()
        .filter(|arg| arg.get_id() != "config")
        .filter_map(|arg| {
            let list = matches!(arg.get_action(), ArgAction::Append);
            Some((arg.get_id().to_string(), arg.get_long()?.to_string(), list))
        })
        .filter(|(_, long, _)| long != "help" && long != "version")
        .collect()
}

/// The values clap holds from the sources `wanted` picks, as raw text.
fn clap_layer(
    command: &Command,
    matches: &ArgMatches,
    name: &str,
    wanted: impl Fn(ValueSource) -> bool,
) -> Layer {
    let mut settings = Dict::new();
    for (id, long, list) in flags(command) {
        if !matches.value_source(&id).is_some_and(&wanted) {
            continue;
        }
        let Some(raw) = matches.get_raw(&id) else {
            continue;
        };
        let mut texts: Vec<Value> = raw
            .map(|v| Value::from(v.to_string_lossy().into_owned()))
            .collect();
        let value = if list {
            Value::from(texts)
        } else if let Some(first) = texts.pop() {
            first
        } else {
            continue;
        };
        settings.insert(long, value);
    }
    Layer {
        name: name.to_string(),
        settings,
    }
}

/// The config file: keys are the flags' long names; a list flag takes an array (or one
/// string, split as the flag splits it); a switch takes `true` or `false`.
fn file_layer(path: &Path, command: &Command) -> Result<Layer, ConfigError> {
    let contents = std::fs::read_to_string(path)
        .map_err(|e| bad("config", format!("cannot read {}: {e}", path.display())))?;
    let table: toml::Table = contents.parse().map_err(|e: toml::de::Error| {
        let why = e.message().to_string();
        bad(
            "config",
            format!("{} is not valid TOML: {why}", path.display()),
        )
    })?;
    let flags = flags(command);
    let mut settings = Dict::new();
    for (key, value) in table {
        let Some((id, long, list)) = flags
            .iter()
            .find(|(id, long, _)| *long == key || id.replace('_', "-") == key)
        else {
            let known: Vec<&str> = flags.iter().map(|(_, long, _)| long.as_str()).collect();
            return Err(bad(
                "config",
                format!(
                    "unknown key `{key}` in {}; keys are: {}",
                    path.display(),
                    known.join(", ")
                ),
            ));
        };
        let arg = command.get_arguments().find(|a| a.get_id() == id.as_str());
        let switch = arg.is_some_and(|a| matches!(a.get_action(), ArgAction::SetTrue));
        if switch && !value.is_bool() {
            return Err(bad("config", format!("`{key}` is a switch: true or false")));
        }
        let value = match value {
            toml::Value::String(s) if *list => {
                let delimiter = arg.and_then(|a| a.get_value_delimiter());
                let parts = match delimiter {
                    Some(d) => s.split(d).map(str::to_string).collect(),
                    None => vec![s],
                };
                toml::Value::Array(parts.into_iter().map(toml::Value::String).collect())
            }
            other => other,
        };
        let value = Value::serialize(&value).map_err(|e| {
            bad(
                "config",
                format!("`{key}` must be a string, number, boolean or a list of them: {e}"),
            )
        })?;
        settings.insert(long.clone(), value);
    }
    Ok(Layer {
        name: format!("config file {}", path.display()),
        settings,
    })
}

/// `*_FILE` variables: the secret is the file's contents (`TTGW_API_KEYS_FILE` holds one key
/// per line or `;`-separated). `PORT`: listen on all interfaces at that port, as platforms
/// that set it expect. A setting given as a flag or variable is not read from here.
fn env_file_layer(given: &impl Fn(&str) -> bool) -> Result<Layer, ConfigError> {
    const SECRET_FILES: [(&str, &str, &str); 5] = [
        ("TTGW_CLIENT_SECRET_FILE", "client_secret", "client-secret"),
        ("TTGW_REFRESH_TOKEN_FILE", "refresh_token", "refresh-token"),
        ("TTGW_PASSWORD_FILE", "password", "password"),
        ("TTGW_API_KEYS_FILE", "api_keys", "api-key"),
        ("TTGW_JWT_SECRET_FILE", "jwt_secret", "jwt-secret"),
    ];
    let mut settings = Dict::new();
    for (variable, id, long) in SECRET_FILES {
        let Some(path) = std::env::var_os(variable) else {
            continue;
        };
        if given(id) {
            continue;
        }
        let key = format!("{long}-file");
        let contents = std::fs::read_to_string(&path).map_err(|e| {
            let path = Path::new(&path).display();
            bad(key.clone(), format!("{variable}: cannot read {path}: {e}"))
        })?;
        let value = if id == "api_keys" {
            let keys: Vec<String> = contents
                .split([';', '\n'])
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect();
            (!keys.is_empty()).then(|| Value::from(keys))
        } else {
            let secret = contents.trim_end_matches(['\r', '\n']);
            (!secret.is_empty()).then(|| Value::from(secret.to_string()))
        };
        let Some(value) = value else {
            return Err(bad(key, format!("{variable}: the file is empty")));
        };
        settings.insert(long.to_string(), value);
    }
    if let Ok(port) = std::env::var("PORT")
        && !given("listen")
    {
        let port: u16 = port
            .trim()
            .parse()
            .map_err(|_| bad("listen", "PORT must be a port number (1-65535)"))?;
        settings.insert("listen".into(), Value::from(format!("0.0.0.0:{port}")));
    }
    Ok(Layer {
        name: "*_FILE secrets and PORT".into(),
        settings,
    })
}

/// A value of the wrong type, named with its flag and the layer it came from (masked: the
/// value is quoted, and it may hold an account number).
fn typed_error(error: figment::Error) -> ConfigError {
    let key = error.path.join(".");
    let layer = error
        .metadata
        .as_ref()
        .map(|m| m.name.to_string())
        .unwrap_or_else(|| "the settings".into());
    let kind = crate::mask::diagnostic(&error.kind.to_string());
    let message = format!("{kind} (from {layer}; the flag is --{key})");
    bad(if key.is_empty() { "config".into() } else { key }, message)
}

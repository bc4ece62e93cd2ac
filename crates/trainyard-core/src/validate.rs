//! Input types that parse: a value of these types is valid by construction.

use serde::Serialize;

/// An input that was refused, with the field it came from and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field as the client named it, e.g. `name` or `tags.team`.
    pub field: String,
    /// What is wrong with it, in words a user can act on.
    pub reason: String,
}

impl FieldError {
    /// A refusal of `field` for `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Longest name of a workspace, experiment, token or other named resource.
pub const MAX_NAME_LEN: usize = 128;
/// Longest tag or property key.
pub const MAX_TAG_KEY_LEN: usize = 250;
/// Longest tag or property value.
pub const MAX_TAG_VALUE_LEN: usize = 5000;
/// Longest free-text description.
pub const MAX_DESCRIPTION_LEN: usize = 5000;

/// A resource name: 1 to 128 characters of letters, digits, `_`, `-` and `.`,
/// starting with a letter or digit, and not shaped like a UUID (so that a path
/// segment is either an id or a name, never both).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    /// Parses `value` as the name given in `field`.
    pub fn parse(field: &str, value: &str) -> Result<Name, FieldError> {
        if value.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if value.chars().count() > MAX_NAME_LEN {
            return Err(FieldError::new(
                field,
                format!("must be at most {MAX_NAME_LEN} characters"),
            ));
        }
        let first = value.chars().next().unwrap_or('-');
        if !first.is_ascii_alphanumeric() {
            return Err(FieldError::new(
                field,
                "must start with a letter or a digit",
            ));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            return Err(FieldError::new(
                field,
                format!("must contain only letters, digits, '_', '-' and '.' (found {bad:?})"),
            ));
        }
        if uuid::Uuid::parse_str(value).is_ok() {
            return Err(FieldError::new(field, "must not be shaped like a UUID"));
        }
        Ok(Name(value.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tag or property key: 1 to 250 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TagKey(String);

impl TagKey {
    /// Parses `value` as the key given in `field`.
    pub fn parse(field: &str, value: &str) -> Result<TagKey, FieldError> {
        if value.trim().is_empty() {
            return Err(FieldError::new(field, "key must not be empty"));
        }
        if value.chars().count() > MAX_TAG_KEY_LEN {
            return Err(FieldError::new(
                field,
                format!("key must be at most {MAX_TAG_KEY_LEN} characters"),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(FieldError::new(
                field,
                "key must not contain control characters",
            ));
        }
        Ok(TagKey(value.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as owned text.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// A tag or property value: at most 5000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TagValue(String);

impl TagValue {
    /// Parses `value` as the value given in `field`.
    pub fn parse(field: &str, value: &str) -> Result<TagValue, FieldError> {
        if value.chars().count() > MAX_TAG_VALUE_LEN {
            return Err(FieldError::new(
                field,
                format!("value must be at most {MAX_TAG_VALUE_LEN} characters"),
            ));
        }
        Ok(TagValue(value.to_owned()))
    }

    /// The value as owned text.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Checks an optional free-text description given in `field`.
pub fn description(field: &str, value: Option<String>) -> Result<Option<String>, FieldError> {
    match value {
        Some(text) if text.chars().count() > MAX_DESCRIPTION_LEN => Err(FieldError::new(
            field,
            format!("must be at most {MAX_DESCRIPTION_LEN} characters"),
        )),
        other => Ok(other),
    }
}

/// Longest display name of a run.
pub const MAX_DISPLAY_NAME_LEN: usize = 256;

/// Checks an optional display name given in `field`: blank means none.
pub fn display_name(field: &str, value: Option<String>) -> Result<Option<String>, FieldError> {
    let Some(text) = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    if text.chars().count() > MAX_DISPLAY_NAME_LEN {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_DISPLAY_NAME_LEN} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(Some(text))
}

/// Parses a map of tags or properties given in `field`, naming the offending
/// key as `field.key` when one is refused.
pub fn tag_map<'a>(
    field: &str,
    entries: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<Vec<(TagKey, TagValue)>, FieldError> {
    entries
        .into_iter()
        .map(|(key, value)| {
            let entry_field = format!("{field}.{key}");
            Ok((
                TagKey::parse(&entry_field, key)?,
                TagValue::parse(&entry_field, value)?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_parse() {
        for ok in ["a", "tf-mnist", "exp_1.v2", &"x".repeat(MAX_NAME_LEN)] {
            assert_eq!(Name::parse("name", ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn bad_names_say_why() {
        let cases = [
            ("", "must not be empty"),
            ("-lead", "must start with a letter or a digit"),
            ("has space", "must contain only letters"),
            ("é", "must start with a letter or a digit"),
            (
                "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                "must not be shaped like a UUID",
            ),
        ];
        for (input, reason) in cases {
            let err = Name::parse("name", input).unwrap_err();
            assert_eq!(err.field, "name");
            assert!(err.reason.starts_with(reason), "{input:?}: {}", err.reason);
        }
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert!(Name::parse("name", &long)
            .unwrap_err()
            .reason
            .contains("128"));
    }

    #[test]
    fn tag_map_names_the_offending_key() {
        let mut tags = std::collections::BTreeMap::new();
        tags.insert("ok".to_string(), "v".to_string());
        tags.insert("big".to_string(), "v".repeat(MAX_TAG_VALUE_LEN + 1));
        let err = tag_map("tags", &tags).unwrap_err();
        assert_eq!(err.field, "tags.big");
        assert!(tag_map("tags", [(&"".to_string(), &"v".to_string())]).is_err());
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(
            display_name("d", Some("  run 1 ".into()))
                .unwrap()
                .as_deref(),
            Some("run 1")
        );
        assert_eq!(display_name("d", Some("   ".into())).unwrap(), None);
        assert!(display_name("d", Some("a\nb".into())).is_err());
        assert!(display_name("d", Some("x".repeat(MAX_DISPLAY_NAME_LEN + 1))).is_err());
    }

    #[test]
    fn long_descriptions_are_refused() {
        assert!(description("description", Some("d".repeat(MAX_DESCRIPTION_LEN))).is_ok());
        assert!(description("description", Some("d".repeat(MAX_DESCRIPTION_LEN + 1))).is_err());
        assert_eq!(description("description", None).unwrap(), None);
    }
}

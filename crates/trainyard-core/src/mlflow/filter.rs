//! MLflow's search grammar: `metrics.acc > 0.9 and params.model = 'cnn'`,
//! and `order_by` clauses such as `metrics.acc DESC`.
//!
//! A filter is clauses joined by `AND`; a clause compares an entity's key
//! (`metrics.`, `params.`, `tags.`, `attributes.`, `datasets.`, with the
//! alternate spellings MLflow accepts, and keys quoted with backticks or
//! double quotes) with a number, a quoted string, or a list in parentheses.

use crate::FieldError;

/// What a clause compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// A metric's latest value.
    Metric,
    /// A param.
    Param,
    /// A tag.
    Tag,
    /// A built-in attribute (run name, status, times, ...).
    Attribute,
    /// A dataset the run read.
    Dataset,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `LIKE` (case-sensitive, `%` and `_` wildcards)
    Like,
    /// `ILIKE` (case-insensitive)
    ILike,
    /// `IN (...)`
    In,
    /// `NOT IN (...)`
    NotIn,
    /// `IS NULL`: the key is absent.
    IsNull,
    /// `IS NOT NULL`: the key is present.
    IsNotNull,
}

impl Op {
    pub(super) fn is_numeric(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }

    pub(super) fn is_text(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Like | Op::ILike)
    }
}

/// The right-hand side of a clause.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A quoted string.
    Text(String),
    /// A number.
    Number(f64),
    /// A parenthesised list of quoted strings.
    List(Vec<String>),
    /// Nothing (`IS NULL`, `IS NOT NULL`).
    None,
}

/// One parsed clause, before a search checks it means something to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    /// The entity compared.
    pub entity: Entity,
    /// Its key: the metric, param or tag name, or the attribute.
    pub key: String,
    /// How it is compared.
    pub op: Op,
    /// With what.
    pub value: Value,
}

pub(super) fn refuse(field: &str, reason: impl Into<String>) -> FieldError {
    FieldError::new(field, reason)
}

/// Parses a filter into clauses (an empty filter has none).
pub fn parse_filter(field: &str, text: &str) -> Result<Vec<Clause>, FieldError> {
    let mut parser = Parser::new(field, text);
    let mut clauses = Vec::new();
    parser.skip_space();
    if parser.at_end() {
        return Ok(clauses);
    }
    loop {
        clauses.push(parser.clause()?);
        parser.skip_space();
        if parser.at_end() {
            return Ok(clauses);
        }
        if !parser.keyword("AND") {
            return Err(parser.error("Invalid clause(s) in filter string; join clauses with AND"));
        }
    }
}

/// Parses an `order_by` clause into its entity, key and direction.
pub fn parse_order(field: &str, text: &str) -> Result<(Entity, String, bool), FieldError> {
    let mut parser = Parser::new(field, text);
    parser.skip_space();
    let (entity, key) = parser.subject()?;
    parser.skip_space();
    let ascending = if parser.keyword("DESC") {
        false
    } else {
        parser.keyword("ASC");
        true
    };
    parser.skip_space();
    if !parser.at_end() {
        return Err(refuse(
            field,
            format!("Invalid order_by clause '{text}'. Could not be parsed."),
        ));
    }
    Ok((entity, key, ascending))
}

/// A hand-written reader over the filter text; it knows at each point
/// whether it expects a name, an operator or a value, so `-1` and `val/acc`
/// need no lexer guesswork.
struct Parser<'a> {
    field: &'a str,
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(field: &'a str, text: &'a str) -> Parser<'a> {
        Parser {
            field,
            text,
            pos: 0,
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn error(&self, reason: &str) -> FieldError {
        refuse(
            self.field,
            format!("{reason} (at position {} of '{}')", self.pos, self.text),
        )
    }

    /// Consumes `word` (any case) when it stands as a whole word here.
    fn keyword(&mut self, word: &str) -> bool {
        self.skip_space();
        let rest = self.rest();
        let matches = rest.len() >= word.len()
            && rest.is_char_boundary(word.len())
            && rest[..word.len()].eq_ignore_ascii_case(word)
            && !rest[word.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
        if matches {
            self.pos += word.len();
        }
        matches
    }

    fn clause(&mut self) -> Result<Clause, FieldError> {
        self.skip_space();
        let (entity, key) = self.subject()?;
        let op = self.op()?;
        let value = match op {
            Op::IsNull | Op::IsNotNull => Value::None,
            Op::In | Op::NotIn => self.list()?,
            _ => self.value()?,
        };
        Ok(Clause {
            entity,
            key,
            op,
            value,
        })
    }

    /// `entity.key`, or a bare key (an attribute).
    fn subject(&mut self) -> Result<(Entity, String), FieldError> {
        let mut parts = vec![self.segment()?];
        while self.peek() == Some('.') {
            self.bump();
            parts.push(self.segment()?);
        }
        if parts.len() == 1 {
            return Ok((Entity::Attribute, parts.remove(0).0));
        }
        let (first, _) = parts.remove(0);
        let entity = match first.as_str() {
            "metric" | "metrics" => Entity::Metric,
            "parameter" | "parameters" | "param" | "params" => Entity::Param,
            "tag" | "tags" => Entity::Tag,
            "attribute" | "attributes" | "attr" | "run" => Entity::Attribute,
            "dataset" | "datasets" => Entity::Dataset,
            other => {
                return Err(refuse(
                    self.field,
                    format!("Invalid entity type '{other}'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']"),
                ))
            }
        };
        // An unquoted dotted key (`tags.mlflow.runName`) keeps its dots.
        let key = parts
            .into_iter()
            .map(|(part, _)| part)
            .collect::<Vec<_>>()
            .join(".");
        Ok((entity, key))
    }

    /// One name segment: a bare word, or text in backticks or double quotes.
    fn segment(&mut self) -> Result<(String, bool), FieldError> {
        match self.peek() {
            Some(quote @ ('`' | '"')) => {
                self.bump();
                Ok((self.until(quote)?, true))
            }
            _ => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '/' | ':'))
                {
                    self.bump();
                }
                if self.pos == start {
                    return Err(self.error("Expected a name such as metrics.acc or params.lr"));
                }
                Ok((self.text[start..self.pos].to_string(), false))
            }
        }
    }

    /// The text up to the closing `quote`, which is consumed.
    fn until(&mut self, quote: char) -> Result<String, FieldError> {
        let start = self.pos;
        while let Some(c) = self.bump() {
            if c == quote {
                return Ok(self.text[start..self.pos - 1].to_string());
            }
        }
        Err(self.error("Unterminated quoted text"))
    }

    fn op(&mut self) -> Result<Op, FieldError> {
        self.skip_space();
        for (symbol, op) in [
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if self.rest().starts_with(symbol) {
                self.pos += symbol.len();
                return Ok(op);
            }
        }
        if self.keyword("LIKE") {
            return Ok(Op::Like);
        }
        if self.keyword("ILIKE") {
            return Ok(Op::ILike);
        }
        if self.keyword("IN") {
            return Ok(Op::In);
        }
        if self.keyword("NOT") {
            if self.keyword("IN") {
                return Ok(Op::NotIn);
            }
            return Err(self.error("Expected IN after NOT"));
        }
        if self.keyword("IS") {
            let negated = self.keyword("NOT");
            if self.keyword("NULL") {
                return Ok(if negated { Op::IsNotNull } else { Op::IsNull });
            }
            return Err(self.error("Expected NULL after IS"));
        }
        Err(self.error("Expected a comparison operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL)"))
    }

    fn value(&mut self) -> Result<Value, FieldError> {
        self.skip_space();
        match self.peek() {
            Some(quote @ ('\'' | '"')) => {
                self.bump();
                Ok(Value::Text(self.until(quote)?))
            }
            Some(c) if c.is_ascii_digit() || matches!(c, '-' | '+' | '.') => self.number(),
            _ => {
                Err(self
                    .error("Expected a value: a number, or a string in single or double quotes"))
            }
        }
    }

    fn number(&mut self) -> Result<Value, FieldError> {
        let start = self.pos;
        if matches!(self.peek(), Some('-' | '+')) {
            self.bump();
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E'))
        {
            let c = self.bump();
            if matches!(c, Some('e' | 'E')) && matches!(self.peek(), Some('-' | '+')) {
                self.bump();
            }
        }
        self.text[start..self.pos]
            .parse::<f64>()
            .map(Value::Number)
            .map_err(|_| self.error("Expected a number"))
    }

    fn list(&mut self) -> Result<Value, FieldError> {
        self.skip_space();
        if self.bump() != Some('(') {
            return Err(self.error("Expected a list of quoted strings in parentheses"));
        }
        let mut items = Vec::new();
        loop {
            match self.value()? {
                Value::Text(text) => items.push(text),
                _ => return Err(self.error("A list may hold only quoted strings")),
            }
            self.skip_space();
            match self.bump() {
                Some(',') => continue,
                Some(')') => return Ok(Value::List(items)),
                _ => return Err(self.error("Expected ',' or ')' in the list")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_keep_entity_key_operator_and_value() {
        let clauses = parse_filter(
            "filter",
            "metrics.acc>=0.5 AND tags.`a b` LIKE 'x%' and params.lr is not null",
        )
        .unwrap();
        assert_eq!(
            clauses[0],
            Clause {
                entity: Entity::Metric,
                key: "acc".into(),
                op: Op::Ge,
                value: Value::Number(0.5)
            }
        );
        assert_eq!(clauses[1].key, "a b");
        assert_eq!(clauses[2].op, Op::IsNotNull);
        assert_eq!(
            parse_order("order_by", "name DESC").unwrap(),
            (Entity::Attribute, "name".into(), false)
        );
    }
}

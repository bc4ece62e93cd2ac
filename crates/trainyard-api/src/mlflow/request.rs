//! Reading MLflow requests as its clients send them: GET parameters in the
//! query string (lists as repeated keys), every other method a JSON body
//! (DELETE included). Unknown fields are ignored, as MLflow's own server
//! ignores them, so newer clients keep working.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::Method;
use serde::de::{DeserializeOwned, Deserializer};
use uuid::Uuid;

use super::error::MlflowError;
use trainyard_db::mlflow::ExperimentRef;

/// The parameters of an MLflow request.
#[derive(Debug)]
pub struct Input<T>(pub T);

impl<S, T> FromRequest<S> for Input<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = MlflowError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if req.method() == Method::GET {
            let query = req.uri().query().unwrap_or_default();
            return serde_html_form::from_str(query)
                .map(Input)
                .map_err(|err| MlflowError::invalid(format!("Invalid request parameters: {err}")));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|err| MlflowError::invalid(format!("Unreadable request body: {err}")))?;
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &body
        };
        serde_json::from_slice(body)
            .map(Input)
            .map_err(|err| MlflowError::invalid(format!("Invalid request body: {err}")))
    }
}

/// A whole number sent as a JSON number or as a string (protobuf's JSON
/// writes 64-bit integers as strings; query parameters are always text).
pub fn lenient_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    deserializer.deserialize_any(Lenient::<i64>::default())
}

/// A double sent as a JSON number, or as protobuf's strings `"NaN"`,
/// `"Infinity"`, `"-Infinity"` (or any number as text).
pub fn lenient_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    deserializer.deserialize_any(Lenient::<f64>::default())
}

/// A visitor for numbers that may come as text; a plain visitor rather
/// than an untagged enum, which would buffer every value of a 1,000-point batch.
#[derive(Default)]
struct Lenient<T>(std::marker::PhantomData<T>);

/// A number type [`Lenient`] reads.
trait LenientNumber: Sized {
    fn from_i64(n: i64) -> Option<Self>;
    fn from_f64(f: f64) -> Option<Self>;
    fn from_text(text: &str) -> Option<Self>;
}

impl LenientNumber for i64 {
    fn from_i64(n: i64) -> Option<i64> {
        Some(n)
    }
    fn from_f64(f: f64) -> Option<i64> {
        (f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64)
    }
    fn from_text(text: &str) -> Option<i64> {
        text.parse().ok()
    }
}

impl LenientNumber for f64 {
    fn from_i64(n: i64) -> Option<f64> {
        Some(n as f64)
    }
    fn from_f64(f: f64) -> Option<f64> {
        Some(f)
    }
    fn from_text(text: &str) -> Option<f64> {
        match text {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            other => other.parse().ok(),
        }
    }
}

impl<'de, T: LenientNumber> serde::de::Visitor<'de> for Lenient<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number, or a number as text")
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Option<T>, E> {
        T::from_i64(n)
            .map(Some)
            .ok_or_else(|| E::custom(format!("{n} is out of range")))
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Option<T>, E> {
        let n = i64::try_from(n).map_err(|_| E::custom(format!("{n} is out of range")))?;
        self.visit_i64(n)
    }

    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Option<T>, E> {
        T::from_f64(f)
            .map(Some)
            .ok_or_else(|| E::custom(format!("{f} is not a whole number")))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Option<T>, E> {
        if text.is_empty() {
            return Ok(None);
        }
        T::from_text(text)
            .map(Some)
            .ok_or_else(|| E::custom(format!("{text:?} is not a number")))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
}

/// The run a request names, by `run_id` or its older spelling `run_uuid`.
pub fn run_id(run_id: &Option<String>, run_uuid: &Option<String>) -> Result<Uuid, MlflowError> {
    let text = run_id
        .as_deref()
        .or(run_uuid.as_deref())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'run_id'"))?;
    parse_run_id(text)
}

/// A run id; anything that is not a Trainyard run id names no run.
pub fn parse_run_id(text: &str) -> Result<Uuid, MlflowError> {
    Uuid::parse_str(text)
        .map_err(|_| MlflowError::not_found(format!("Run with id={text} not found")))
}

/// An experiment id: "0" (the workspace's `Default`) or a Trainyard id.
pub fn experiment_ref(text: &str) -> Result<ExperimentRef, MlflowError> {
    if text == trainyard_core::mlflow::DEFAULT_EXPERIMENT_ID {
        return Ok(ExperimentRef::Default);
    }
    Uuid::parse_str(text)
        .map(ExperimentRef::Id)
        .map_err(|_| MlflowError::not_found(format!("No Experiment with id={text} exists")))
}

/// A required text parameter.
pub fn required<'a>(name: &str, value: &'a Option<String>) -> Result<&'a str, MlflowError> {
    value.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| {
        MlflowError::invalid(format!("Missing value for required parameter '{name}'"))
    })
}

/// A page token: the offset of the next page, MLflow's way.
pub fn page_offset(token: &Option<String>) -> Result<i64, MlflowError> {
    use base64::Engine;
    let Some(token) = token.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(0);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| MlflowError::invalid("Invalid page token, could not base64-decode"))?;
    let parsed: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| MlflowError::invalid("Invalid page token"))?;
    parsed["offset"]
        .as_i64()
        .filter(|n| *n >= 0)
        .ok_or_else(|| MlflowError::invalid("Invalid page token"))
}

/// Cuts the up to `limit + 1` items fetched from `offset` to one page, with
/// the token of the next page when the extra item shows there is one.
pub fn page<T>(mut items: Vec<T>, offset: i64, limit: i64) -> (Vec<T>, Option<String>) {
    use base64::Engine;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let token = more.then(|| {
        base64::engine::general_purpose::STANDARD
            .encode(serde_json::json!({ "offset": offset + limit }).to_string())
    });
    (items, token)
}

/// A `max_results` parameter, checked against MLflow's bounds.
pub fn max_results(value: Option<i64>, default: i64, most: i64) -> Result<i64, MlflowError> {
    match value {
        None => Ok(default),
        Some(n) if (1..=most).contains(&n) => Ok(n),
        Some(n) => Err(MlflowError::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied: it must be at most {most} and positive"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Numbers {
        #[serde(default, deserialize_with = "lenient_i64")]
        whole: Option<i64>,
        #[serde(default, deserialize_with = "lenient_f64")]
        double: Option<f64>,
    }

    #[test]
    fn numbers_come_as_json_numbers_or_text() {
        let parsed: Numbers =
            serde_json::from_str(r#"{"whole": "17", "double": "-Infinity"}"#).unwrap();
        assert_eq!(
            (parsed.whole, parsed.double),
            (Some(17), Some(f64::NEG_INFINITY))
        );
        let parsed: Numbers = serde_json::from_str(r#"{"whole": 3.0, "double": 2}"#).unwrap();
        assert_eq!((parsed.whole, parsed.double), (Some(3), Some(2.0)));
        let parsed: Numbers = serde_html_form::from_str("whole=25000").unwrap();
        assert_eq!((parsed.whole, parsed.double), (Some(25000), None));
        assert!(serde_json::from_str::<Numbers>(r#"{"whole": 1.5}"#).is_err());
        assert!(serde_json::from_str::<Numbers>(r#"{"double": "high"}"#).is_err());
    }

    #[test]
    fn page_tokens_carry_the_next_offset() {
        let (items, token) = page(vec![1, 2, 3, 4], 10, 3);
        assert_eq!(items, vec![1, 2, 3]);
        assert_eq!(page_offset(&token).unwrap(), 13);
        assert_eq!(page(vec![1, 2], 0, 3).1, None);
        assert_eq!(page_offset(&None).unwrap(), 0);
        assert!(page_offset(&Some("not base64!".into())).is_err());
    }

    #[test]
    fn experiment_ids_are_zero_or_uuids() {
        assert_eq!(experiment_ref("0").unwrap(), ExperimentRef::Default);
        assert!(matches!(
            experiment_ref("01a20000-0000-7000-8000-000000000000").unwrap(),
            ExperimentRef::Id(_)
        ));
        assert_eq!(
            experiment_ref("7").unwrap_err().code,
            "RESOURCE_DOES_NOT_EXIST"
        );
    }
}

//! One parameter spec for both languages: the task's `configs/tasks/<task>.yaml`, compiled into
//! its binary, with each algorithm's hyperparameters checked by the `jsonschema` crate exactly as
//! python/mlbench/config.py checks them with Python's jsonschema (defaults stripped, every key
//! required, no other key allowed). A value the spec refuses never reaches a Rust library.
use serde_json::{Map, Value};

use crate::config::Job;
use crate::error::{BenchError, Result};

/// The JSON Schema of one algorithm's fully expanded hyperparameters (Python: `parameter_schema`).
fn parameter_schema(params: &Map<String, Value>) -> Value {
    let properties: Map<String, Value> = params
        .iter()
        .map(|(name, fragment)| {
            let mut fragment = fragment.as_object().cloned().unwrap_or_default();
            fragment.remove("default");
            (name.clone(), Value::Object(fragment))
        })
        .collect();
    serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "required": params.keys().collect::<Vec<_>>(),
        "properties": properties,
    })
}

/// The spec among `specs` whose `task` is the job's (a program serving several tasks), else the
/// first, which `check_task` then refuses with the task it runs.
pub fn spec_for<'a>(specs: &[&'a str], job: &Job) -> &'a str {
    specs
        .iter()
        .find(|text| {
            serde_yaml_ng::from_str::<Value>(text)
                .ok()
                .and_then(|spec| spec.get("task").and_then(Value::as_str).map(|task| task == job.task))
                .unwrap_or(false)
        })
        .copied()
        .unwrap_or(specs[0])
}

/// Check that the job is for this program's task (the spec's `task`) and one of its datasets, as
/// Python's loader refuses a task it does not know and a dataset the task does not list.
pub fn check_task(spec_yaml: &str, job: &Job) -> Result<()> {
    let spec: Value = serde_yaml_ng::from_str(spec_yaml)
        .map_err(|e| BenchError::run(format!("the compiled-in task spec is not valid YAML: {e}")))?;
    let datasets: Vec<&str> = spec
        .get("datasets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match spec.get("task").and_then(Value::as_str) {
        Some(task) if task == job.task && !datasets.contains(&job.dataset.as_str()) => {
            Err(BenchError::usage(format!(
                "dataset: {:?} is not a dataset of task {task} (known: {})",
                job.dataset,
                datasets.join(", ")
            )))
        }
        Some(task) if task == job.task => Ok(()),
        Some(task) => Err(BenchError::usage(format!(
            "task: this program runs task {task}, the job says {:?}",
            job.task
        ))),
        None => Err(BenchError::run("the compiled-in task spec names no task")),
    }
}

/// The task spec's registry of what a framework lacks (`unsupported`, read by Python's harness and
/// `mlbench frameworks` too): the reason of the first rule naming the job's framework and algorithm
/// (and its dataset, where the rule lists `datasets`) whose `when` keys all match its
/// hyperparameters (a value, or one of a list of values).
pub fn unsupported_reason(spec_yaml: &str, job: &Job) -> Result<Option<String>> {
    let spec: Value = serde_yaml_ng::from_str(spec_yaml)
        .map_err(|e| BenchError::run(format!("the compiled-in task spec is not valid YAML: {e}")))?;
    let names = |rule: &Value, key: &str, name: &str| {
        rule.get(key).and_then(Value::as_array).is_some_and(|list| list.iter().any(|v| v == name))
    };
    let matches = |(key, wanted): (&String, &Value)| {
        let Some(value) = job.hyperparameters.get(key) else { return false };
        match wanted {
            Value::Array(values) => values.contains(value),
            single => single == value,
        }
    };
    let rules = spec.get("unsupported").and_then(Value::as_array).cloned().unwrap_or_default();
    Ok(rules
        .iter()
        .find(|rule| {
            names(rule, "frameworks", &job.framework)
                && names(rule, "algorithms", &job.algorithm)
                && (rule.get("datasets").is_none() || names(rule, "datasets", &job.dataset))
                && rule.get("when").and_then(Value::as_object).is_none_or(|when| when.iter().all(matches))
        })
        .map(|rule| rule.get("reason").and_then(Value::as_str).unwrap_or_default().trim().to_string()))
}

/// Check a job's hyperparameters against the task spec (YAML text). Errors name the field, as
/// Python's do: `hyperparameters.alpha: -1.0 is less than or equal to the minimum of 0`.
pub fn check_hyperparameters(spec_yaml: &str, job: &Job) -> Result<()> {
    let spec: Value = serde_yaml_ng::from_str(spec_yaml)
        .map_err(|e| BenchError::run(format!("the compiled-in task spec is not valid YAML: {e}")))?;
    let algorithms = spec.get("algorithms").and_then(Value::as_object).cloned().unwrap_or_default();
    let Some(params) = algorithms.get(&job.algorithm) else {
        let known: Vec<&str> = algorithms.keys().map(String::as_str).collect();
        return Err(BenchError::usage(format!(
            "algorithm: unknown algorithm {:?} for task {} (known: {})",
            job.algorithm,
            job.task,
            known.join(", ")
        )));
    };
    let schema = parameter_schema(params.as_object().unwrap_or(&Map::new()));
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| BenchError::run(format!("the task spec's schema for {}: {e}", job.algorithm)))?;
    let instance = Value::Object(job.hyperparameters.clone());
    let mut errors: Vec<(String, String)> = validator
        .iter_errors(&instance)
        .map(|e| {
            let path = e.instance_path().to_string();
            let field = path.trim_start_matches('/').replace('/', ".");
            (field, e.to_string())
        })
        .collect();
    errors.sort(); // the first by field, then message: deterministic, like Python's
    match errors.into_iter().next() {
        None => Ok(()),
        Some((field, message)) => {
            let field = if field.is_empty() { String::new() } else { format!(".{field}") };
            Err(BenchError::usage(format!("hyperparameters{field}: {message}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = concat!(
        "algorithms:\n",
        "  ridge:\n",
        "    alpha: {type: number, exclusiveMinimum: 0, default: 1.0}\n",
        "    max_iter: {type: integer, minimum: 1, default: 1000}\n",
    );

    fn job(params: &str) -> Job {
        let mut job: Job = serde_yaml_ng::from_str(crate::config::tests::JOB).unwrap();
        job.hyperparameters = serde_json::from_str(params).unwrap();
        job
    }

    #[test]
    fn accepts_what_the_spec_allows() {
        check_hyperparameters(SPEC, &job(r#"{"alpha": 0.5, "max_iter": 10}"#)).unwrap();
    }

    #[test]
    fn refuses_out_of_range_values_naming_the_field() {
        let err = check_hyperparameters(SPEC, &job(r#"{"alpha": -1.0, "max_iter": 10}"#)).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().starts_with("hyperparameters.alpha: "), "{err}");
        assert!(err.to_string().contains("minimum of 0"), "{err}");
    }

    #[test]
    fn refuses_missing_and_unknown_keys() {
        let err = check_hyperparameters(SPEC, &job(r#"{"alpha": 1.0}"#)).unwrap_err();
        assert!(err.to_string().contains("max_iter"), "{err}");
        let err =
            check_hyperparameters(SPEC, &job(r#"{"alpha": 1.0, "max_iter": 1, "colour": 1}"#)).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn finds_the_first_matching_unsupported_rule() {
        let spec = concat!(
            "unsupported:\n",
            "  - {frameworks: [linfa], algorithms: [ridge], when: {alpha: [2.0, 3.0]}, reason: no alpha 2 or 3}\n",
            "  - {frameworks: [linfa, other], algorithms: [lasso], reason: no lasso}\n",
        );
        let mut j = job(r#"{"alpha": 2.0, "max_iter": 10}"#);
        j.framework = "linfa".into();
        j.algorithm = "ridge".into();
        assert_eq!(unsupported_reason(spec, &j).unwrap().as_deref(), Some("no alpha 2 or 3"));
        j.hyperparameters = serde_json::from_str(r#"{"alpha": 1.0, "max_iter": 10}"#).unwrap();
        assert_eq!(unsupported_reason(spec, &j).unwrap(), None);
        j.algorithm = "lasso".into();
        assert_eq!(unsupported_reason(spec, &j).unwrap().as_deref(), Some("no lasso"));
        j.framework = "kodama".into();
        assert_eq!(unsupported_reason(spec, &j).unwrap(), None);
    }

    #[test]
    fn a_rule_with_datasets_matches_those_datasets_only() {
        let spec = "unsupported:\n  - {frameworks: [linfa], algorithms: [ridge], datasets: [moons], reason: no moons}\n";
        let mut j = job(r#"{"alpha": 2.0, "max_iter": 10}"#);
        j.framework = "linfa".into();
        j.algorithm = "ridge".into();
        j.dataset = "moons".into();
        assert_eq!(unsupported_reason(spec, &j).unwrap().as_deref(), Some("no moons"));
        j.dataset = "circles".into();
        assert_eq!(unsupported_reason(spec, &j).unwrap(), None);
    }

    #[test]
    fn refuses_an_unknown_algorithm() {
        let mut j = job("{}");
        j.algorithm = "huber".into();
        let err = check_hyperparameters(SPEC, &j).unwrap_err();
        assert!(err.to_string().contains("unknown algorithm \"huber\""), "{err}");
    }
}

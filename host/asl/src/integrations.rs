//! AWS Step Functions' optimized service integrations: which `arn:aws:states:::SERVICE:ACTION`
//! Task resources exist and which integration patterns (`.sync`, `.sync:2`,
//! `.waitForTaskToken`) each accepts, so a definition AWS would refuse at CreateStateMachine
//! is refused here too. `aws-sdk:SERVICE:ACTION` integrations are open-ended: any service and
//! action of the right shape, Request Response or `.waitForTaskToken`, never `.sync`.
//!
//! Source: "Integrating optimized services with Step Functions" and each service's page in the
//! Step Functions developer guide (docs.aws.amazon.com/step-functions/latest/dg/
//! integrate-optimized.html). Request Response is supported by every listed action.

/// `.sync` (Run a Job).
pub const SYNC: u8 = 1;
/// `.sync:2` (Run a Job, JSON output; `states:startExecution` only).
pub const SYNC2: u8 = 2;
/// `.waitForTaskToken` (Wait for Callback).
pub const TOKEN: u8 = 4;

/// Service -> [(action, allowed suffixes)].
const OPTIMIZED: &[(&str, &[(&str, u8)])] = &[
    ("apigateway", &[("invoke", TOKEN)]),
    (
        "athena",
        &[
            ("startQueryExecution", SYNC),
            ("stopQueryExecution", 0),
            ("getQueryExecution", 0),
            ("getQueryResults", 0),
        ],
    ),
    ("batch", &[("submitJob", SYNC)]),
    (
        "bedrock",
        &[
            ("invokeModel", 0),
            ("createModelCustomizationJob", SYNC | TOKEN),
        ],
    ),
    (
        "codebuild",
        &[
            ("startBuild", SYNC),
            ("stopBuild", 0),
            ("batchDeleteBuilds", 0),
            ("batchGetReports", 0),
            ("startBuildBatch", SYNC),
            ("stopBuildBatch", 0),
            ("retryBuildBatch", SYNC),
            ("deleteBuildBatch", 0),
        ],
    ),
    (
        "dynamodb",
        &[
            ("getItem", 0),
            ("putItem", 0),
            ("updateItem", 0),
            ("deleteItem", 0),
        ],
    ),
    ("ecs", &[("runTask", SYNC | TOKEN)]),
    (
        "eks",
        &[
            ("createCluster", SYNC),
            ("deleteCluster", SYNC),
            ("createFargateProfile", SYNC),
            ("deleteFargateProfile", SYNC),
            ("createNodegroup", SYNC),
            ("deleteNodegroup", SYNC),
            ("runJob", SYNC | TOKEN),
            ("call", 0),
        ],
    ),
    (
        "elasticmapreduce",
        &[
            ("createCluster", SYNC),
            ("terminateCluster", SYNC),
            ("addStep", SYNC),
            ("cancelStep", 0),
            ("setClusterTerminationProtection", 0),
            ("modifyInstanceFleetByName", 0),
            ("modifyInstanceGroupByName", 0),
        ],
    ),
    (
        "emr-containers",
        &[
            ("createVirtualCluster", 0),
            ("deleteVirtualCluster", SYNC),
            ("startJobRun", SYNC),
        ],
    ),
    (
        "emr-serverless",
        &[
            ("createApplication", SYNC),
            ("startApplication", SYNC),
            ("stopApplication", SYNC),
            ("deleteApplication", SYNC),
            ("startJobRun", SYNC),
            ("cancelJobRun", SYNC),
        ],
    ),
    ("events", &[("putEvents", TOKEN)]),
    ("glue", &[("startJobRun", SYNC)]),
    ("databrew", &[("startJobRun", SYNC)]),
    ("http", &[("invoke", 0)]),
    ("lambda", &[("invoke", TOKEN)]),
    ("mediaconvert", &[("createJob", SYNC)]),
    (
        "sagemaker",
        &[
            ("createEndpoint", 0),
            ("createEndpointConfig", 0),
            ("createHyperParameterTuningJob", SYNC),
            ("createLabelingJob", SYNC),
            ("createModel", 0),
            ("createProcessingJob", SYNC),
            ("createTrainingJob", SYNC),
            ("createTransformJob", SYNC),
            ("updateEndpoint", 0),
        ],
    ),
    ("sns", &[("publish", TOKEN)]),
    ("sqs", &[("sendMessage", TOKEN)]),
    ("states", &[("startExecution", SYNC | SYNC2 | TOKEN)]),
];

/// The suffix's name as written, for messages.
pub fn suffix_name(suffix: u8) -> &'static str {
    match suffix {
        SYNC => ".sync",
        SYNC2 => ".sync:2",
        TOKEN => ".waitForTaskToken",
        _ => "",
    }
}

/// Checks `SERVICE:ACTION` (the part of an integration ARN after the account) with the
/// suffix written after it (0 for none). `Err` says why AWS would refuse it.
pub fn check(service_action: &str, suffix: u8) -> Result<(), String> {
    if let Some(rest) = service_action.strip_prefix("aws-sdk:") {
        let (svc, action) = rest.split_once(':').unwrap_or((rest, ""));
        let svc_ok = svc
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && svc
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        let action_ok = action
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase())
            && action.chars().all(|c| c.is_ascii_alphanumeric());
        if !svc_ok || !action_ok {
            return Err(format!(
                "'aws-sdk:{rest}' is not an AWS SDK integration (expected aws-sdk:SERVICE:apiAction, the action in camelCase)"
            ));
        }
        if suffix & (SYNC | SYNC2) != 0 {
            return Err(format!(
                "AWS SDK integrations do not support the Run a Job pattern ({}); only Request Response and .waitForTaskToken",
                suffix_name(suffix)
            ));
        }
        return Ok(());
    }
    let (svc, action) = service_action
        .split_once(':')
        .unwrap_or((service_action, ""));
    let Some((_, actions)) = OPTIMIZED.iter().find(|(s, _)| *s == svc) else {
        return Err(format!(
            "'{svc}' is not an optimized service integration (use arn:aws:states:::aws-sdk:{svc}:apiAction for the AWS SDK integration)"
        ));
    };
    let Some((_, allowed)) = actions.iter().find(|(a, _)| *a == action) else {
        let known: Vec<&str> = actions.iter().map(|(a, _)| *a).collect();
        return Err(format!(
            "'{svc}:{action}' is not an action of the optimized {svc} integration (it has {}; other API actions are available as aws-sdk:{svc}:ACTION)",
            known.join(", ")
        ));
    };
    if suffix != 0 && allowed & suffix == 0 {
        let mut ok = vec!["Request Response"];
        for s in [SYNC, SYNC2, TOKEN] {
            if allowed & s != 0 {
                ok.push(suffix_name(s));
            }
        }
        return Err(format!(
            "'{svc}:{action}' does not support {} (supported: {})",
            suffix_name(suffix),
            ok.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimized_actions_and_patterns() {
        assert!(check("dynamodb:getItem", 0).is_ok());
        assert!(check("dynamodb:query", 0)
            .unwrap_err()
            .contains("aws-sdk:dynamodb"));
        assert!(check("dynamodb:scan", 0).is_err());
        assert!(check("lambda:invoke", TOKEN).is_ok());
        assert!(check("lambda:invoke", SYNC).is_err());
        assert!(check("glue:startJobRun", SYNC).is_ok());
        assert!(check("glue:startJobRun", TOKEN).is_err());
        assert!(check("sqs:sendMessage", TOKEN).is_ok());
        assert!(check("sns:publish", SYNC).is_err());
        assert!(check("states:startExecution", SYNC2).is_ok());
        assert!(check("ecs:runTask", SYNC2).is_err());
        assert!(check("http:invoke", 0).is_ok());
        assert!(check("nosuch:thing", 0).is_err());
    }

    #[test]
    fn sdk_integrations_are_open_but_shaped() {
        assert!(check("aws-sdk:s3:getObject", 0).is_ok());
        assert!(check("aws-sdk:dynamodb:query", TOKEN).is_ok());
        assert!(check("aws-sdk:sfn:startExecution", SYNC).is_err());
        assert!(check("aws-sdk:s3:GetObject", 0).is_err());
        assert!(check("aws-sdk:s3", 0).is_err());
        assert!(check("aws-sdk::getObject", 0).is_err());
        assert!(check("aws-sdk:s3:get-object", 0).is_err());
    }
}

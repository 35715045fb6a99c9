//! `TagResource`, `UntagResource` and `ListTags` on clusters (backups have no records).

use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::live_cluster;
use crate::{ApiError, ClusterService};

/// A cluster has at most 50 tags (CloudHSM's quota).
const MAX_TAGS: usize = 50;

/// `Tag`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TagIn {
    key: String,
    value: String,
}

/// `TagResourceRequest`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TagResourceRequest {
    resource_id: String,
    tag_list: Vec<TagIn>,
}

/// `UntagResourceRequest`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UntagResourceRequest {
    resource_id: String,
    tag_key_list: Vec<String>,
}

/// `ListTagsRequest`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListTagsRequest {
    resource_id: String,
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    max_results: Option<i64>,
}

fn check_tag(key: &str, value: &str) -> Result<(), ApiError> {
    let ok = |s: &str| {
        s.chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
    };
    if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
        return Err(ApiError::invalid(
            "Tag keys are 1-128 characters, values 0-256.",
        ));
    }
    if !ok(key) || !ok(value) {
        return Err(ApiError {
            name: "CloudHsmTagException",
            message: "Tags may contain letters, digits, spaces and _.:/=+-@ only.".into(),
        });
    }
    Ok(())
}

impl ClusterService {
    /// `TagResource`: adds or overwrites tags.
    pub(crate) fn tag_resource(
        &self,
        account: &str,
        region: &str,
        req: TagResourceRequest,
    ) -> Result<Value, ApiError> {
        if req.tag_list.is_empty() || req.tag_list.len() > MAX_TAGS {
            return Err(ApiError::invalid("TagList must hold 1 to 50 tags."));
        }
        for t in &req.tag_list {
            check_tag(&t.key, &t.value)?;
        }
        let mut st = self.lock();
        let c = live_cluster(&mut st, account, region, &req.resource_id)?;
        let mut tags = c.tags.clone();
        for t in req.tag_list {
            match tags.iter_mut().find(|(k, _)| *k == t.key) {
                Some(slot) => slot.1 = t.value,
                None => tags.push((t.key, t.value)),
            }
        }
        if tags.len() > MAX_TAGS {
            return Err(ApiError {
                name: "CloudHsmResourceLimitExceededException",
                message: format!("A resource can have at most {MAX_TAGS} tags."),
            });
        }
        c.tags = tags;
        self.save(&st)?;
        Ok(json!({}))
    }

    /// `UntagResource`: removes tags by key (absent keys are ignored).
    pub(crate) fn untag_resource(
        &self,
        account: &str,
        region: &str,
        req: UntagResourceRequest,
    ) -> Result<Value, ApiError> {
        if req.tag_key_list.is_empty() || req.tag_key_list.len() > MAX_TAGS {
            return Err(ApiError::invalid("TagKeyList must hold 1 to 50 keys."));
        }
        let mut st = self.lock();
        let c = live_cluster(&mut st, account, region, &req.resource_id)?;
        c.tags.retain(|(k, _)| !req.tag_key_list.contains(k));
        self.save(&st)?;
        Ok(json!({}))
    }

    /// `ListTags`: in the order they were added, paged by position.
    pub(crate) fn list_tags(
        &self,
        account: &str,
        region: &str,
        req: ListTagsRequest,
    ) -> Result<Value, ApiError> {
        let limit = match req.max_results {
            None => 100,
            Some(n @ 1..=100) => n as usize,
            Some(_) => return Err(ApiError::invalid("MaxResults must be between 1 and 100.")),
        };
        let start = match &req.next_token {
            None => 0,
            Some(t) => t
                .parse::<usize>()
                .map_err(|_| ApiError::invalid("Invalid NextToken."))?,
        };
        let mut st = self.lock();
        let c = live_cluster(&mut st, account, region, &req.resource_id)?;
        let page: Vec<Value> = c
            .tags
            .iter()
            .skip(start)
            .take(limit)
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect();
        let mut out = json!({ "TagList": page });
        if start + limit < c.tags.len() {
            out["NextToken"] = json!((start + limit).to_string());
        }
        Ok(out)
    }
}

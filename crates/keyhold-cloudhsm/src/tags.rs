//! `TagResource`, `UntagResource` and `ListTags` on clusters (backups have no records).

use keyhold_cloudhsm_model::shapes::{
    ListTagsRequest, ListTagsResponse, TagResourceRequest, TagResourceResponse,
    UntagResourceRequest, UntagResourceResponse,
};
use keyhold_cloudhsm_model::Exception;

use crate::{ApiError, ClusterService};

/// A cluster has at most 50 tags (CloudHSM's quota).
const MAX_TAGS: usize = 50;

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
            exception: Exception::CloudHsmTag,
            message: "Tags may contain letters, digits, spaces and _.:/=+-@ only.".into(),
        });
    }
    Ok(())
}

impl ClusterService {
    /// `TagResource`: adds or overwrites tags.
    pub(crate) async fn serve_tag_resource(
        &self,
        account: &str,
        region: &str,
        req: TagResourceRequest,
    ) -> Result<TagResourceResponse, ApiError> {
        if req.tag_list.is_empty() || req.tag_list.len() > MAX_TAGS {
            return Err(ApiError::invalid("TagList must hold 1 to 50 tags."));
        }
        for t in &req.tag_list {
            check_tag(&t.key, &t.value)?;
        }
        self.with_cluster(account, region, &req.resource_id, |c| {
            let mut tags = c.tags.clone();
            for t in &req.tag_list {
                match tags.iter_mut().find(|(k, _)| *k == t.key) {
                    Some(slot) => slot.1.clone_from(&t.value),
                    None => tags.push((t.key.clone(), t.value.clone())),
                }
            }
            if tags.len() > MAX_TAGS {
                return Err(ApiError {
                    exception: Exception::CloudHsmResourceLimitExceeded,
                    message: format!("A resource can have at most {MAX_TAGS} tags."),
                });
            }
            c.tags = tags;
            Ok(())
        })
        .await?;
        Ok(TagResourceResponse {})
    }

    /// `UntagResource`: removes tags by key (absent keys are ignored).
    pub(crate) async fn serve_untag_resource(
        &self,
        account: &str,
        region: &str,
        req: UntagResourceRequest,
    ) -> Result<UntagResourceResponse, ApiError> {
        if req.tag_key_list.is_empty() || req.tag_key_list.len() > MAX_TAGS {
            return Err(ApiError::invalid("TagKeyList must hold 1 to 50 keys."));
        }
        self.with_cluster(account, region, &req.resource_id, |c| {
            c.tags.retain(|(k, _)| !req.tag_key_list.contains(k));
            Ok(())
        })
        .await?;
        Ok(UntagResourceResponse {})
    }

    /// `ListTags`: in the order they were added, paged by position.
    pub(crate) async fn serve_list_tags(
        &self,
        account: &str,
        region: &str,
        req: ListTagsRequest,
    ) -> Result<ListTagsResponse, ApiError> {
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
        let c = self.live_cluster(account, region, &req.resource_id).await?;
        let more = start.saturating_add(limit) < c.tags.len();
        Ok(ListTagsResponse {
            tag_list: crate::wire::tags(c.tags.iter().skip(start).take(limit)),
            next_token: more.then(|| (start + limit).to_string()),
        })
    }
}

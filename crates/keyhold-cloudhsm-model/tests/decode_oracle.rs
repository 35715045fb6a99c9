//! The single-pass decoding of request bodies (`decode_input`) against the reference path
//! (parse, validate, decode: `decode_checked`) for every CloudHSM operation, over bodies made from
//! each operation's input table: both must decode the same input or report the same error.

use keyhold_model_runtime::assert_oracle_for_every_operation;

#[test]
fn single_pass_decoding_answers_as_the_reference_path() {
    let total = assert_oracle_for_every_operation! {
        keyhold_cloudhsm_model;
        CopyBackupToRegion => CopyBackupToRegionRequest,
        CreateCluster => CreateClusterRequest,
        CreateHsm => CreateHsmRequest,
        DeleteBackup => DeleteBackupRequest,
        DeleteCluster => DeleteClusterRequest,
        DeleteHsm => DeleteHsmRequest,
        DeleteResourcePolicy => DeleteResourcePolicyRequest,
        DescribeBackups => DescribeBackupsRequest,
        DescribeClusters => DescribeClustersRequest,
        GetResourcePolicy => GetResourcePolicyRequest,
        InitializeCluster => InitializeClusterRequest,
        ListTags => ListTagsRequest,
        ModifyBackupAttributes => ModifyBackupAttributesRequest,
        ModifyCluster => ModifyClusterRequest,
        PutResourcePolicy => PutResourcePolicyRequest,
        RestoreBackup => RestoreBackupRequest,
        TagResource => TagResourceRequest,
        UntagResource => UntagResourceRequest,
    };
    eprintln!("{total:?}");
}

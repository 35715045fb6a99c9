//! The single-pass decoding of request bodies (`decode_input`) against the reference path
//! (parse, validate, decode: `decode_checked`) for every CloudHSM operation, over bodies made from
//! each operation's input table: both must decode the same input or report the same error.

use keyhold_cloudhsm_model::{input_shape, shapes, Operation};
use keyhold_model_runtime::oracle::{assert_same_on, Tally};

/// Compares both paths for each listed operation (with its input type); every operation of
/// the model must be listed.
macro_rules! oracle {
    ($($op:ident => $input:ident,)*) => {{
        let mut total = Tally::default();
        let mut covered = Vec::new();
        $(
            let t = assert_same_on::<shapes::$input>(
                Operation::$op.name(),
                input_shape(Operation::$op),
            );
            assert!(t.decoded > 0, "{}: no body decoded", stringify!($op));
            total.decoded += t.decoded;
            total.refused += t.refused;
            covered.push(Operation::$op);
        )*
        for op in Operation::ALL {
            assert!(covered.contains(op), "{} is not compared", op.name());
        }
        total
    }};
}

#[test]
fn single_pass_decoding_answers_as_the_reference_path() {
    let total = oracle! {
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

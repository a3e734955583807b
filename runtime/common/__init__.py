"""What the Lambdas and the operator scripts share: CloudFormation property parsing, the
boto3 client settings, JSON logs, the operator-error base class and the exit codes, and the
copy's rules. Bundled into each Lambda asset as `runtime/common`; modules import each
other relatively, and nothing here imports aws_cdk."""

"""`sagepipe runs`: read the audit trail of a deployed (or local) stack.

Plain modules, one concern each; sagepipe/cli.py only parses options and prints:

- stack: find the stack by name (CloudFormation outputs), defaulting to samconfig.toml's stack_name;
- records: what a record holds, grouped for reading, what an older record lacks, console links;
- queries: every read is a GetItem or a Query on one of the runs table's indexes, never a Scan;
- diff: two records side by side, and the training code's changed files when the repository is at hand;
- verify: the stored model against the record, and the record against its Object Lock ledger entry;
- rerun: a new run of an old one's commit, data version and training configuration;
- render: tables and sections for a terminal;
- audit_digests: the content digest and canonical JSON, the same file as functions/common/audit_digests.py.

Everything uses boto3's usual configuration (profile, region, AWS_ENDPOINT_URL), so it works against AWS and
against the local runtime alike.
"""

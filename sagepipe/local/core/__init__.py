"""The emulator core: moto in server mode in this process, the runtime context every service reads, and the
helper through which services reach moto's internals.

Nothing here knows about a particular service: the service packages (sagepipe.local.stepfunctions,
codebuild, sagemaker, lambda_, eventbridge, s3, dynamodb) build on this, and sagepipe.local.services wires
them into an emulator.
"""

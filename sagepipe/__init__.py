"""sagepipe: an auditable SageMaker training pipeline on AWS SAM, and its local runtime."""

__version__ = "0.1.0"

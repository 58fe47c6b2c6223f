"""Code shared by every sagepipe Lambda function."""

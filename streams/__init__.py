"""Stream processors (faust): sampling, RED metrics and service graph over whole messages."""

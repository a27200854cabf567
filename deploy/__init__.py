"""Deployment: the local runner (real Tansu + ClickHouse, no Docker), compose and k8s files."""

"""Probe and metrics routes, at the root (what load balancers and Prometheus expect)."""

from django.urls import path

from . import views

urlpatterns = [
    path("metrics", views.metrics, name="metrics"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
]

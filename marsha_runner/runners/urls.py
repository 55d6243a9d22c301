"""Runner API routes, anchored at ^api/v1/ (the library's own pattern is not)."""

from django.urls import include, re_path
from django_peertube_runner_connector.urls import router

urlpatterns = [re_path(r"^api/v1/", include(router.urls))]

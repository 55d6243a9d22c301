"""URL configuration of marsha_runner."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from marsha_runner import admin_site  # noqa: F401  (the site's links and the users' admin)

admin.autodiscover()  # every app's admin module (see admin_apps: not at every start)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("marsha_runner.runners.urls")),
    path("", include("marsha_runner.storage.urls")),
    path("", include("marsha_runner.videos.urls")),
    path("", include("marsha_runner.observability.urls")),
    path("api/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("api/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/schema/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/schema/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]

"""Runner API routes, anchored at ^api/v1/ (the library's own pattern is not, DESIGN §7.9).

Our hardened viewsets under the library's URL names (it reverses
``runner-jobs-download_video_file`` to build each job's ``videoFileUrl``).
"""

from django.urls import include, re_path
from rest_framework import routers

from .views import HardenedRunnerJobViewSet, HardenedRunnerViewSet

router = routers.SimpleRouter(trailing_slash=False)
router.register(r"runners/jobs", HardenedRunnerJobViewSet, basename="runner-jobs")
router.register(r"runners", HardenedRunnerViewSet, basename="runner")

urlpatterns = [re_path(r"^api/v1/", include(router.urls))]

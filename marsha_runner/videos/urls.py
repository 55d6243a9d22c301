"""Video API routes (filled by the pipeline issue)."""

urlpatterns = []

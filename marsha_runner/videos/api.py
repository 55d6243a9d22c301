"""Upload API: thin classes that validate, call one service and shape the answer."""

from drf_spectacular.utils import extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services
from .models import Video


class CanChangeVideos(BasePermission):
    """Authenticated, with the ``videos.change_video`` permission."""

    message = "You need the permission to change videos."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm("videos.change_video"))


@extend_schema_serializer(component_name="Video")
class VideoOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Video
        fields = [
            "id",
            "title",
            "upload_state",
            "upload_error_reason",
            "uploaded_on",
            "transcode_pipeline",
            "storage_location",
            "resolutions",
            "duration",
            "size",
            "urls",
            "created_on",
            "updated_on",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["urls"] = services.video_urls_for_client(video=instance)
        return data


UploadOutputSerializer = inline_serializer(
    name="UploadOutput",
    fields={
        "url": serializers.URLField(),
        "fields": serializers.DictField(child=serializers.CharField()),
    },
)


class VideoApiBase(APIView):
    permission_classes = [CanChangeVideos]

    @staticmethod
    def get_video(video_id) -> Video:
        try:
            return selectors.video_get(video_id=video_id)
        except Video.DoesNotExist as err:
            raise NotFound("No such video.") from err

    def call_service(self, service, *, request, video_id):
        """Validate the body, check the video exists, call the service; refusals are 400."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        video = self.get_video(video_id)
        try:
            return service(video_id=video.id, **serializer.validated_data)
        except services.VideoRefused as err:
            raise ValidationError({err.field: str(err)}) from err


class VideoCreateApi(VideoApiBase):
    @extend_schema_serializer(component_name="VideoCreateInput")
    class InputSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=255)

    @extend_schema(request=InputSerializer, responses={201: VideoOutputSerializer})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        video = services.video_create(**serializer.validated_data)
        return Response(VideoOutputSerializer(video).data, status=status.HTTP_201_CREATED)


class VideoDetailApi(VideoApiBase):
    @extend_schema(responses={200: VideoOutputSerializer})
    def get(self, request, video_id):
        return Response(VideoOutputSerializer(self.get_video(video_id)).data)


class VideoInitiateUploadApi(VideoApiBase):
    @extend_schema_serializer(component_name="VideoInitiateUploadInput")
    class InputSerializer(serializers.Serializer):
        filename = serializers.CharField(max_length=255)
        mimetype = serializers.CharField(max_length=255)
        size = serializers.IntegerField(min_value=1)

    @extend_schema(request=InputSerializer, responses={200: UploadOutputSerializer})
    def post(self, request, video_id):
        answer = self.call_service(
            services.video_initiate_upload, request=request, video_id=video_id
        )
        return Response({**answer, "url": request.build_absolute_uri(answer["url"])})


class VideoUploadEndedApi(VideoApiBase):
    @extend_schema_serializer(component_name="VideoUploadEndedInput")
    class InputSerializer(serializers.Serializer):
        file_key = serializers.CharField(max_length=1024)

    @extend_schema(request=InputSerializer, responses={200: VideoOutputSerializer})
    def post(self, request, video_id):
        video = self.call_service(services.video_upload_ended, request=request, video_id=video_id)
        # Eager mode has already run the launch on commit: answer the state it left.
        video.refresh_from_db()
        return Response(VideoOutputSerializer(video).data)

"""The admin site as a whole: no "View site" (nothing is served at ``/``), and the users' and
groups' pages offering only the permissions that do something here.

Django lists every permission of every model: the library's own models (unregistered, never
shown), the add/change/delete of rows that are read-only in the staff admin. Granting one of
those does nothing, so it is not offered.
"""

from types import SimpleNamespace

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission, User
from django.db.models import Q

admin.site.site_url = None  # no public site at "/": the link led to a 404
admin.site.site_header = "marsha_runner staff"
admin.site.site_title = "marsha_runner staff"


class _AllowedEverything:
    is_active = is_staff = is_superuser = True

    def has_perm(self, perm, obj=None):
        return True


def permissions_idle() -> Q:
    """The permissions that grant nothing in this admin: the default ones of models it does
    not show, and add/change/delete where the model's admin allows none of it to anyone."""
    everyone = SimpleNamespace(user=_AllowedEverything())
    idle = Q(codename__in=[])
    shown = set()
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        shown.add((opts.app_label, opts.model_name))
        checks = {
            "add": model_admin.has_add_permission(everyone),
            "change": model_admin.has_change_permission(everyone),
            "delete": model_admin.has_delete_permission(everyone),
        }
        idle |= Q(
            content_type__app_label=opts.app_label,
            content_type__model=opts.model_name,
            codename__in=[f"{verb}_{opts.model_name}" for verb, ok in checks.items() if not ok],
        )
    defaults = ("add_", "change_", "delete_", "view_")
    for permission in Permission.objects.select_related("content_type").only(
        "codename", "content_type__app_label", "content_type__model"
    ):
        ct = permission.content_type
        if (ct.app_label, ct.model) not in shown and permission.codename.startswith(defaults):
            idle |= Q(pk=permission.pk)
    return idle


def permissions_offered():
    return Permission.objects.exclude(permissions_idle()).select_related("content_type")


class _OfferedPermissions:
    def formfield_for_manytomany(self, db_field, request=None, **kwargs):
        if db_field.name in ("user_permissions", "permissions"):
            kwargs["queryset"] = permissions_offered()
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class StaffUserAdmin(_OfferedPermissions, UserAdmin):
    pass


class StaffGroupAdmin(_OfferedPermissions, GroupAdmin):
    pass


for _model, _admin in ((User, StaffUserAdmin), (Group, StaffGroupAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)

"""Staff users with chosen permissions, and the admin's action POSTs."""

from django.contrib.admin import helpers
from django.contrib.auth.models import Permission, User
from django.urls import reverse


def staff_user(*codenames, username="staff"):
    """A staff user (not a superuser) with only the view permissions and ``codenames``."""
    user = User.objects.create_user(username=username, password="pw", is_staff=True)
    views = Permission.objects.filter(
        content_type__app_label__in=["runners", "videos"], codename__startswith="view_"
    )
    chosen = Permission.objects.filter(
        content_type__app_label__in=["runners", "videos"], codename__in=codenames
    )
    assert chosen.count() == len(codenames), codenames
    user.user_permissions.add(*views, *chosen)
    return user


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def change(model, pk) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[pk])


def post_action(client, model, action, objects=(), *, confirmed=False, select_across=False):
    data = {
        "action": action,
        "index": 0,
        "select_across": "1" if select_across else "0",
        helpers.ACTION_CHECKBOX_NAME: [str(o.pk) for o in objects],
    }
    if confirmed:
        data["confirmed"] = "yes"
    return client.post(changelist(model), data)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


def action_names(client, model) -> set[str]:
    response = client.get(changelist(model))
    form = response.context["action_form"]
    if form is None:  # no action at all for this user
        return set()
    return {name for name, _ in form.fields["action"].choices if name}

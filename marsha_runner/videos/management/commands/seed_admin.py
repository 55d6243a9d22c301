"""``manage.py seed_admin``: a superuser to log in to the admin of a dev machine."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction


@transaction.atomic
def user_seed_superuser(*, username: str, email: str, password: str, keep_password: bool):
    """Create the superuser, or make an existing one a superuser again. Idempotent.

    With ``keep_password`` an existing account keeps its password: running ``make run`` again
    must not undo a password changed since. Returns ``(user, created, password_changed)``.
    """
    user_model = get_user_model()
    user = user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
    if user is None:
        user = user_model.objects.create_superuser(
            **{user_model.USERNAME_FIELD: username}, email=email, password=password
        )
        return user, True, True
    fields = {"is_staff": True, "is_superuser": True, "is_active": True}
    changed = [name for name, value in fields.items() if getattr(user, name) != value]
    for name in changed:
        setattr(user, name, fields[name])
    password_changed = not keep_password and not user.check_password(password)
    if password_changed:
        user.set_password(password)
        changed.append("password")
    if changed:
        user.save(update_fields=changed)
    return user, False, password_changed


class Command(BaseCommand):
    help = "Create a dev superuser (default admin/admin) and print how to log in. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--password", help="Default 'admin', only while DEBUG is on; required otherwise."
        )
        parser.add_argument("--email", default="admin@example.com")

    def handle(self, *args, **options):
        password = options["password"]
        if password is None:
            if not settings.DEBUG:
                raise CommandError("DEBUG is off: give the superuser's password with --password.")
            password_given, password = False, "admin"
        else:
            password_given = True
            if not settings.DEBUG:
                try:
                    validate_password(password)
                except ValidationError as error:
                    raise CommandError(" ".join(error.messages)) from None
        username = options["username"]
        user, created, password_changed = user_seed_superuser(
            username=username,
            email=options["email"],
            password=password,
            # Without --password, an existing account keeps the one it has.
            keep_password=not password_given,
        )
        if created:
            self.stderr.write(f"Created the superuser {username!r}.")
        elif password_changed:
            self.stderr.write(f"Superuser {username!r} already exists; password updated.")
        else:
            self.stderr.write(f"Superuser {username!r} already exists; left as is.")
        if created or password_changed:
            # The dev default is printed; a password given in production is not echoed.
            shown = password if settings.DEBUG else "(the one you gave)"
        else:
            shown = "(unchanged)"
        admin_url = f"{settings.SERVER_URL}/admin/"
        self.stdout.write(f"Log in at {admin_url} with user: {username}, password: {shown}")

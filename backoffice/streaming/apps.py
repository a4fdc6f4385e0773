from django.apps import AppConfig
from django.db.models.signals import post_migrate


class StreamingConfig(AppConfig):
    name = "backoffice.streaming"
    label = "streaming"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.streaming import schemas

        # Schemas are registered (with ids) every time the database is migrated.
        post_migrate.connect(schemas.register_on_migrate, sender=self)

from django.contrib import admin

from backoffice.streaming.models import ConsumerOffset, DeadLetter, RegisteredSchema


@admin.register(ConsumerOffset)
class ConsumerOffsetAdmin(admin.ModelAdmin[ConsumerOffset]):
    list_display = ("group", "topic", "partition", "next_offset", "updated_at")
    list_filter = ("group",)


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin[DeadLetter]):
    list_display = (
        "id",
        "stage",
        "source_topic",
        "partition",
        "offset",
        "error_class",
        "status",
        "created_at",
    )
    list_filter = ("stage", "status", "error_class")
    search_fields = ("reason",)
    readonly_fields = [f.name for f in DeadLetter._meta.fields]


@admin.register(RegisteredSchema)
class RegisteredSchemaAdmin(admin.ModelAdmin[RegisteredSchema]):
    list_display = ("id", "name", "version", "fingerprint", "registered_at")

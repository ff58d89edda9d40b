from django.core.management.base import BaseCommand

from engagement.services.demo import demo_workspace_seed


class Command(BaseCommand):
    help = "Create (or keep) the demo workspace, its users, channel, rules and customers."

    def handle(self, *args: object, **options: object) -> None:
        seed = demo_workspace_seed()
        self.stdout.write(self.style.SUCCESS(f"Demo workspace: {seed.workspace.name}"))
        self.stdout.write(f"  SMS channel {seed.sms_channel.address} via {seed.sms_channel.provider}")
        for username, password, role in seed.logins:
            self.stdout.write(f"  login {username} / {password}  ({role})")

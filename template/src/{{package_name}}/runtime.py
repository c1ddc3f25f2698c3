"""Everything a flow run needs, opened once per run: settings, campaign, store."""

from __future__ import annotations

from dataclasses import dataclass

from . import PROJECT
from .campaign import Campaign, load_campaign
from .messages import Composer
from .settings import Settings, get_settings
from .store import Store

LINK_KEY_NAME = "unsubscribe-links"


@dataclass
class Runtime:
    """The checked campaign and the open store of one run."""

    settings: Settings
    campaign: Campaign
    store: Store
    composer: Composer

    @classmethod
    def open(cls, settings: Settings | None = None) -> Runtime:
        """Load and check the campaign and open the store.

        Raises:
            ConfigurationError: campaign.yaml or a content file is wrong.
        """
        settings = settings or get_settings()
        campaign = load_campaign(settings.campaign_file)
        store = Store(settings.database_url)
        composer = Composer(
            campaign,
            settings.content_dir,
            public_url=settings.public_url,
            link_secret=link_secret(settings, store),
            project=PROJECT,
        )
        try:
            composer.check(campaign.nurture)
        except Exception:
            store.close()
            raise
        return cls(settings, campaign, store, composer)

    def close(self) -> None:
        """Close the store."""
        self.store.close()


def link_secret(settings: Settings, store: Store) -> str:
    """The key that signs unsubscribe links: the setting, or one kept in the store."""
    if settings.unsubscribe_secret is not None:
        return settings.unsubscribe_secret.get_secret_value()
    return store.project_secret(LINK_KEY_NAME)

"""The parts of an itemStruct that point at the CDN: the video block (signed URLs, sizes, bitrates), the
photo post's images and the music, with :class:`MediaUrls` signing the URLs they carry."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from .catalog import CatalogVideo


class MediaUrls:
    """Signed CDN URLs: ``/cdn/video/{id}.mp4?...&expire=..&signature=..&tk=tt_chain_token``."""

    def __init__(self, base_url: str, secret: bytes) -> None:
        self.base_url = base_url
        self._secret = secret

    def signature(self, video_id: str, expire: int) -> str:
        message = f"{video_id}:{expire}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def video(self, video_id: str, expire: int, *, host: str = "v16", watermark: bool = False) -> str:
        query = {
            "a": "1988",
            "bti": "ODszNWYuMDE6",
            "ch": "0",
            "cr": "3",
            "dr": "0",
            "er": "0",
            "lr": "all",
            "net": "0",
            "cd": "0|0|0|0",
            "cv": "1",
            "br": "0",
            "bt": "0",
            "ds": "4",
            "ft": "aEeq8qT0mIoPD12T",
            "mime_type": "video_mp4",
            "qs": "0",
            "rc": host,
            "vvpl": "1",
            "l": f"2026{video_id[-12:]}",
            "btag": "e00090000",
            "expire": str(expire),
            "policy": "2",
            "signature": self.signature(video_id, expire),
            "tk": "tt_chain_token",
        }
        if watermark:
            query["wm"] = "1"
        return f"{self.base_url}/cdn/video/{video_id}.mp4?{urlencode(query)}"

    def play_api(self, video_id: str) -> str:
        """The ``www.tiktok.com/aweme/v1/play/`` kind of URL, which answers tiny non-video bodies."""
        query = {
            "faid": "1988",
            "file_id": hashlib.md5(video_id.encode()).hexdigest(),
            "is_play_url": "1",
            "item_id": video_id,
            "line": "0",
            "ply_type": "2",
            "tk": "tt_chain_token",
            "video_id": f"v{video_id[-10:]}",
        }
        return f"{self.base_url}/aweme/v1/play/?{urlencode(query)}"

    def image(self, name: str) -> str:
        return f"{self.base_url}/cdn/img/{name}.jpeg?x-expires=1799999999&x-signature=replica"


class MediaBlocks:
    """The CDN-facing blocks of one answer's items; ``sizes`` are the media files' byte counts."""

    def __init__(self, urls: MediaUrls, sizes: dict[str, int]) -> None:
        self.urls = urls
        self.sizes = sizes

    def music(self, video: CatalogVideo) -> dict:
        music = video.music
        cover = self.urls.image(f"music-{music.id}")
        return {
            "authorName": music.author_name,
            "coverLarge": cover,
            "coverMedium": cover,
            "coverThumb": cover,
            "duration": music.duration,
            "id": music.id,
            "isCopyrighted": not music.original,
            "is_commerce_music": True,
            "is_unlimited_music": False,
            "original": music.original,
            "playUrl": f"{self.urls.base_url}/cdn/music/{music.id}.mp3",
            "private": False,
            "shoot_duration": music.duration,
            "title": music.title,
            "tt2dsp": {},
        }

    def video(self, video: CatalogVideo, expire: int) -> dict:
        media = video.media
        assert media is not None, "only playable kinds have a video block"
        size = self.sizes.get(video.id, 0)
        bitrate = int(size * 8 / media.duration_s) if media.duration_s else 0
        short_side = min(media.width, media.height)
        definition = f"{short_side}p" if short_side != 576 else "540p"
        file_hash = hashlib.md5(f"{video.id}:{size}".encode()).hexdigest()
        uri = f"v15044gf0000{video.id[-12:]}"
        url_list = [
            self.urls.video(video.id, expire, host="v16"),
            self.urls.video(video.id, expire, host="v19"),
            self.urls.play_api(video.id),
        ]
        play_addr = {
            "DataSize": size,
            "FileCs": f"c:0-{size // 400}-{file_hash[:4]}",
            "FileHash": file_hash,
            "Height": media.height,
            "Uri": uri,
            "UrlKey": f"{uri}_{media.tiktok_codec}_{definition}_{bitrate}",
            "UrlList": url_list,
            "Width": media.width,
        }
        gear = "normal_720_0" if short_side >= 720 else "lowest_540_0"
        if media.codec == "hevc":
            gear = "adapt_540_1"
        cover = self.urls.image(f"cover-{video.id}")
        return {
            "PlayAddrStruct": play_addr,
            "VQScore": "66.47",
            "bitrate": bitrate,
            "bitrateInfo": [
                {
                    "Bitrate": bitrate,
                    "BitrateFPS": round(media.fps),
                    "CodecType": media.tiktok_codec,
                    "Format": "mp4",
                    "GearName": gear,
                    "MVMAF": "{}",
                    "PlayAddr": play_addr,
                    "QualityType": 10,
                    "VideoExtra": '{"PktOffsetMap":"","audio_bit_rate":32000}',
                }
            ],
            "claInfo": {"enableAutoCaption": False, "hasOriginalAudio": media.has_audio, "noCaptionReason": 1},
            "codecType": media.tiktok_codec,
            "cover": cover,
            "definition": definition,
            "downloadAddr": self.urls.video(video.id, expire, watermark=True),
            "duration": int(round(media.duration_s)),
            "dynamicCover": cover,
            "encodeUserTag": "",
            "encodedType": "normal",
            "format": "mp4",
            "height": media.height,
            "id": video.id,
            "originCover": cover,
            "playAddr": url_list[0],
            "ratio": definition,
            "size": size,
            "subtitleInfos": [],
            "videoID": uri,
            "videoQuality": "normal",
            "volumeInfo": {"Loudness": -22.6, "Peak": 0.66} if media.has_audio else {},
            "width": media.width,
            "zoomCover": {"240": cover, "480": cover, "720": cover, "960": cover},
        }

    def photo_video(self, video: CatalogVideo) -> dict:
        cover = self.urls.image(f"photo-{video.id}-0")
        return {
            "cover": cover,
            "duration": 0,
            "height": 0,
            "id": video.id,
            "originCover": cover,
            "ratio": "",
            "volumeInfo": {},
            "width": 0,
        }

    def image_post(self, video: CatalogVideo) -> dict:
        def image(index: int) -> dict:
            url = self.urls.image(f"photo-{video.id}-{index}")
            return {"imageHeight": 2000, "imageURL": {"urlList": [url, url]}, "imageWidth": 1600}

        return {
            "cover": image(0),
            "images": [image(i) for i in range(video.images)],
            "shareCover": image(0),
            "title": "",
        }

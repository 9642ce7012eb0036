# Build: docker build -t pulse .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /pulse ./cmd/pulse

FROM gcr.io/distroless/static-debian12
COPY --from=build /pulse /pulse
VOLUME /data
EXPOSE 8080 9092
# --http on 0.0.0.0 answers any Host name (the container is reached by
# whatever name); Go's profiler is not served unless --debug-listen is
# added, and then keep it on 127.0.0.1 inside the container.
ENTRYPOINT ["/pulse", "run", "--data-dir", "/data", "--http", "0.0.0.0:8080"]
